"""Console-script mains: each module has `main(argv=None)`."""
