from loreweave.entrypoints.cli import main

main()
