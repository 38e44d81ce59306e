from services.receiving.app import run

run()
