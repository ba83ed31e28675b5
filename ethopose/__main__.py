from ethopose.cli import app

app()
