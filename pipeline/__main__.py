from pipeline.launch import main

main()
