"""The public function: the QR page, QR codes, and a signed proxy of the backend's public routes.

It imports nothing of backend/ (cold start matters on Function Compute).
"""
