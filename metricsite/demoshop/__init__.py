"""A small shop for the demo's business metrics: customers and their orders."""
