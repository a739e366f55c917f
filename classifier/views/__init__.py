"""Server-rendered pages, split by what they show: pages, predictions, images (account pages: accounts/views.py)."""
