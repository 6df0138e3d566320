from loreweave.cli import main

main()
