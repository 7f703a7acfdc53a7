"""One router per audience: auth, app (owners, supporters, factory service), gateway,
trading, ops."""
