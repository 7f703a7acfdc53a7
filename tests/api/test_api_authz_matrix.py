"""Every route x every role x own and foreign ids, derived from the app's routes.

The cases come from the guards the routes declare (``x-roles``), so a new route is covered
the moment it is added, and a route without a guard fails app creation. Expectations:

* anonymous callers get 401 on every non-public route;
* a principal whose role the route admits gets through the guard (no 401/403/404);
* any other principal gets 401 (wrong kind of token), 403 or 404, and an error body only;
* a site, box or grant id of another tenant is answered 404 to every user principal, and so
  is a site the caller has no relation to (never 403, never data).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.routing import APIRoute

from api.deps import route_roles
from api.main import api_routes, create_app
from tests.api.conftest import Api, World, build_world, make_settings, start_api

USER_PRINCIPALS = (
    "owner",
    "stranger",
    "supporter",
    "factory_service",
    "trader",
    "analyst",
)
PRINCIPALS = ("anonymous", *USER_PRINCIPALS, "box")
#: Which declared roles each principal holds towards site A and its objects.
HOLDS: dict[str, set[str]] = {
    "anonymous": set(),
    "owner": {"customer", "owner"},
    "stranger": {"customer"},
    "supporter": {"customer", "supporter"},
    "factory_service": {"factory_service"},
    "trader": {"trader"},
    "analyst": {"analyst"},
    "box": {"box"},
}
SITE_ROLES = {"owner", "supporter", "factory_service"}
NONEXISTENT_SITE = "site_00000000000000000000000000000000"


def _routes() -> list[tuple[str, str, APIRoute]]:
    app = create_app(make_settings(Path("/nonexistent")))
    cases = []
    for path, route in api_routes(app):
        for method in sorted(route.methods - {"HEAD", "OPTIONS"}):
            cases.append((method, path, route))
    return cases


ROUTES = _routes()


def _fill(path: str, world: World, *, foreign: bool, foreign_objects: bool | None = None) -> str:
    """The path with ids of site A (own) or site B (foreign) filled in.

    ``foreign_objects`` mixes: own site id with the ids of the other tenant's objects in it.
    """
    objects_foreign = foreign if foreign_objects is None else foreign_objects
    values = {
        "site_id": world.site_b if foreign else world.site_a,
        "box_id": world.box_b if objects_foreign else world.box_a,
        "supporter_id": world.user_ids["supporter_b" if foreign else "supporter"],
        "group": "default",
        "name": "ev",
        "month": "2025-06",
    }
    if foreign and path.startswith("/v1/trading"):
        # Traders work fleet-wide: every existing site is theirs; a foreign id is a made-up one.
        values["site_id"] = NONEXISTENT_SITE
    unknown = set(re.findall(r"{(\w+)}", path)) - set(values)
    assert not unknown, f"matrix test does not know how to fill {unknown} in {path}"
    return path.format(**values)


def _call(world: World, method: str, path: str, principal: str) -> Any:
    body = {} if method in {"POST", "PUT", "PATCH"} else None
    return world.api.client.request(method, path, json=body, headers=world.headers(principal))


def _assert_error_only(response: Any) -> None:
    assert set(response.json()) == {"error"}, response.text


@pytest.fixture
def fresh_world(tmp_path: Path, db_url: str) -> Iterator[World]:
    """A new world per case, on SQLite and on PostgreSQL (``db_url``)."""
    apis: Iterator[Api] = start_api(tmp_path, database_url=db_url)
    api = next(apis)
    yield build_world(api)
    next(apis, None)


def test_every_route_declares_known_roles() -> None:
    assert len(ROUTES) >= 30
    for method, path, route in ROUTES:
        roles = route_roles(route.dependant)
        assert roles, f"{method} {path} has no guard"
        if "{site_id}" in path and path.startswith("/v1/app"):
            assert set(roles) <= SITE_ROLES, f"{method} {path}: site route with non-site roles"


@pytest.mark.parametrize(
    ("method", "path", "route"), ROUTES, ids=[f"{m} {p}" for m, p, _ in ROUTES]
)
def test_authorization_matrix(method: str, path: str, route: APIRoute, fresh_world: World) -> None:
    world = fresh_world
    roles = set(route_roles(route.dependant) or ())
    is_public = roles == {"public"}
    site_scoped_app = "{site_id}" in path and path.startswith("/v1/app")
    has_ids = bool(re.search(r"{(site_id|box_id|supporter_id)}", path))

    # 1. Foreign ids, before anything below may change the world.
    if has_ids and not is_public:
        # Site B is the stranger's own; everyone else is foreign to it.
        for principal in (p for p in PRINCIPALS if p != "stranger"):
            response = _call(world, method, _fill(path, world, foreign=True), principal)
            admits = bool(HOLDS[principal] & roles)
            if principal == "anonymous":
                assert response.status_code == 401, (principal, response.text)
            elif (site_scoped_app and principal != "box") or admits:
                assert response.status_code == 404, (principal, response.text)
            else:
                assert response.status_code in {401, 403, 404}, (principal, response.text)
            _assert_error_only(response)

        # Own site, other tenant's object in it (a box of site B addressed under site A).
        if "{box_id}" in path:
            mixed = _fill(path, world, foreign=False, foreign_objects=True)
            for principal in (p for p in PRINCIPALS if HOLDS[p] & roles):
                response = _call(world, method, mixed, principal)
                assert response.status_code == 404, (principal, response.text)
                _assert_error_only(response)

    own_path = _fill(path, world, foreign=False)
    allowed = [p for p in PRINCIPALS if is_public or HOLDS[p] & roles]
    denied = [p for p in PRINCIPALS if p not in allowed]
    # 2. Principals the guard must stop.
    for principal in denied:
        response = _call(world, method, own_path, principal)
        if principal == "anonymous":
            assert response.status_code == 401, response.text
        elif site_scoped_app and not HOLDS[principal] & SITE_ROLES:
            assert response.status_code in {401, 404}, (principal, response.text)
        else:
            assert response.status_code in {401, 403, 404}, (principal, response.text)
        _assert_error_only(response)
    # 3. Principals it must let through (last: some of these calls change or delete things).
    for principal in allowed:
        response = _call(world, method, own_path, principal)
        assert response.status_code not in {401, 403, 404}, (principal, response.text)
        assert response.status_code < 500, (principal, response.text)
