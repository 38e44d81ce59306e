from services.allocation.app import run

run()
