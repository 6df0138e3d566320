"""The application's use cases: each request of a person or an app, in one unit of work."""
