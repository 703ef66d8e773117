"""Mail: composing license and refusal mails from templates, and sending them over SMTP."""
