from jumpstarter_jupyter.cli import main

main()
