"""Applications: what a customer asks for, from the form to a stored, numbered record."""
