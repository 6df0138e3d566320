"""The bundled offline demo: a short story, and the cassette that answers for the LLM."""
