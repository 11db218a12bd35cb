"""Ratings of the app's replies (thumbs up / down, better answers) and the datasets built from them."""
