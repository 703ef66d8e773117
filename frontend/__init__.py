"""The public function: the QR page, QR codes, and a signed proxy of two backend endpoints.

It imports nothing of backend/ (cold start matters on Function Compute).
"""
