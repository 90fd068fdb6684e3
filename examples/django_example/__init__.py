"""``orders``: a minimal Django project behind a SOAJS gateway (see ``manage.py``)."""
