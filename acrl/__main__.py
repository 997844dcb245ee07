from acrl.cli.program import run

run()
