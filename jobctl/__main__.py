from jobctl.cli.app import main

main()
