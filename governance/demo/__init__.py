"""Demo data for a first run (`manage.py demo`), kept out of the product code: the German credit
data with synthetic applicant ids, the models trained on it, and the steps that register them."""
