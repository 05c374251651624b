from botclave_cli.cli.app import main

main()
