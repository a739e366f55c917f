"""Server-rendered pages, split by what they show: pages, accounts, predictions, images."""
