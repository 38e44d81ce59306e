from services.shipping.app import run

run()
