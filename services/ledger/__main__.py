from services.ledger.app import run

run()
