"""Postmortems: from a resolved incident to a reviewed, published report."""
