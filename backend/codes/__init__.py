"""Activation codes: batches for a product's terms, lookups by keyed hash, redemption."""
