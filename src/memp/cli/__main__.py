from memp.cli import main

main()
