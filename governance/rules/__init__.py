"""Pure rules of the governance domain: no ORM, no services, no selectors."""
