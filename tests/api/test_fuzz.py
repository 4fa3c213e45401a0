"""The API fuzzed from its own OpenAPI document (schemathesis): for every operation, the schema's
own examples, its boundary values (schemathesis' coverage cases) and random requests that fit the
schema and that do not. No answer may be a 5xx, and every answer must be documented: its status
code, its content type and its body's model.

Requests go through `TestClient`, so the lifespan runs as in production (the champion is loaded);
the fuzz must reach priced answers (200), or it would only have proved that errors are errors.
"""

from __future__ import annotations

import json
from collections import Counter

import pytest
import schemathesis
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import SecretStr, ValidationError
from schemathesis import GenerationMode, checks
from schemathesis.core.failures import FailureGroup

from api.errors import field_problems
from api.main import create_app
from api.schemas import EXAMPLE_LISTING, ListingIn
from tests.hostile import json_hostile_value
from valuation.infra.settings import Settings
from valuation.schema import FEATURES, MAX_CATEGORY_LENGTH, MAX_FANS

FUZZ = settings(
    max_examples=40,
    deadline=None,
    # Bodies of up to 10,000 listings are slow to generate by design (the batch limit's boundary).
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    database=None,  # a bounded run that does not depend on what earlier runs found
)
BRIEF = settings(FUZZ, max_examples=15)
HOSTILE = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
# The operations, listed at collection time from a bare app's document (no lifespan, no settings);
# `test_the_served_document_is_the_fuzzed_one` checks the served app has the same.
OPERATIONS = [
    result.ok().label
    for result in schemathesis.openapi.from_dict(create_app().openapi()).get_all_operations()
]
# With a model loaded these must answer 200 to some of what the fuzz sends.
PRICED = {"POST /v1/quote", "POST /v1/quotes", "POST /v1/appraisal", "GET /v1/model", "GET /readyz"}
EXCLUDED = [
    # "Schema-valid request rejected": a listing's values are marketplace spellings, which no JSON
    # Schema can describe: `fans` is any string in the schema, but only "13.13W"-like strings
    # are counts, and the parsers refuse the rest with a 422 naming the field. That 422 is the
    # documented answer, so this check cannot tell a bug from the contract here. (Likewise
    # /v1/sales' 422 for a listing_id never quoted: a matter of the record, not of the schema.)
    # The opposite check, that schema-violating requests are refused, stays on.
    checks.positive_data_acceptance,
]


def fuzzed_schema(document: dict):
    """The document as schemathesis reads it, a 413 counted as refusing bad data: a body over the
    size limit is refused, as documented, and schemathesis' own list of refusals lacks it (a batch
    over the length limit whose random listings also passed 4 MiB failed the fuzz by chance)."""
    schema = schemathesis.openapi.from_dict(document)
    rejection = schema.config.checks.negative_data_rejection
    rejection.expected_statuses = [*rejection.expected_statuses, "413"]
    return schema


@pytest.fixture(scope="module")
def client(trained, settings, tmp_path_factory):
    """The session's champion, served with the admin endpoints on (a token is configured, so
    they answer 401 to the fuzz rather than 404 to everything) and a quote record of its own."""
    records = tmp_path_factory.mktemp("fuzz") / "records.db"
    fuzzed = settings.model_copy(
        update={"admin_token": SecretStr("fuzz-" * 8), "database_url": f"sqlite:///{records}"}
    )
    with TestClient(create_app(settings=fuzzed), raise_server_exceptions=False) as client:
        yield client


@pytest.fixture(scope="module")
def served_schema(client):
    """The document as the running app serves it."""
    return fuzzed_schema(client.get("/openapi.json").json())


def send(client, case):
    """The case through TestClient (schemathesis' own transport would run a second lifespan)."""
    request = case.as_transport_kwargs(base_url=str(client.base_url))
    request.pop("cookies", None)  # TestClient keeps cookies per client, not per request
    if "data" in request:  # requests' name for a raw body
        request["content"] = request.pop("data")
    return client.request(**request)


def fuzz(client, schema, label: str, budget=FUZZ, excluded=EXCLUDED, keyed=False) -> Counter:
    """Runs every example and coverage case of one operation, and `budget.max_examples` random
    cases that fit the schema or not; returns the count of each status code answered."""
    modes = list(GenerationMode)
    operation = schema.find_operation_by_label(label)
    statuses: Counter = Counter()

    def check(case) -> None:
        response = send(client, case)
        statuses[response.status_code] += 1
        try:
            case.validate_response(response, excluded_checks=excluded)
        except FailureGroup as group:
            # With `keyed`, every request carries the key, even those schemathesis means to send
            # without one (the unkeyed fuzz checks those): only that finding is set aside.
            rest = [f for f in group.exceptions if not (keyed and "Authorization" in str(f))]
            if rest:
                raise FailureGroup(rest) from None

    for case in schema.iter_coverage_cases(
        operation,
        generation_modes=modes,
        generation_config=schema.config.generation_for(operation=operation),
    ):
        check(case)
    strategies = [
        *schema.get_strategies_from_examples(operation),
        *(operation.as_strategy(mode) for mode in modes),
    ]

    @budget
    @given(case=st.one_of(strategies))
    def random_cases(case) -> None:
        check(case)

    random_cases()
    return statuses


def test_the_served_document_is_the_fuzzed_one(served_schema):
    assert [result.ok().label for result in served_schema.get_all_operations()] == OPERATIONS


@pytest.mark.parametrize("label", OPERATIONS)
def test_every_answer_is_documented(client, served_schema, label):
    statuses = fuzz(client, served_schema, label)
    assert not [status for status in statuses if status >= 500], statuses
    if label in PRICED:
        assert statuses[200] > 0, f"{label}: the fuzz never reached a priced answer: {statuses}"


KEYED = [
    label
    for label in OPERATIONS
    if any(p in label for p in ("/v1/sales", "/v1/listings", "/admin/"))
]


@pytest.fixture(scope="module")
def keyed(trained, settings, tmp_path_factory):
    """The same served app, every request carrying an admin key (the configured token, which
    counts as one): the fuzz reaches past the keys' 401 into what each keyed route answers."""
    records = tmp_path_factory.mktemp("fuzz-keyed") / "records.db"
    fuzzed = settings.model_copy(
        update={"admin_token": SecretStr("fuzz-" * 8), "database_url": f"sqlite:///{records}"}
    )
    auth = {"Authorization": f"Bearer {'fuzz-' * 8}"}
    with TestClient(create_app(settings=fuzzed), raise_server_exceptions=False, headers=auth) as c:
        yield c


@pytest.mark.parametrize("label", KEYED)
def test_with_a_key_every_answer_is_documented(keyed, label):
    schema = fuzzed_schema(keyed.get("/openapi.json").json())
    # Every request carries the key, even those schemathesis means to send without one (the
    # unkeyed fuzz above checks those): its missing-header checks do not apply here.
    excluded = [*EXCLUDED, checks.missing_required_header, checks.ignored_auth]
    statuses = fuzz(keyed, schema, label, budget=BRIEF, excluded=excluded, keyed=True)
    assert not [status for status in statuses if status >= 500], statuses
    assert set(statuses) - {401}, f"{label}: the key was never accepted: {statuses}"


@pytest.fixture(scope="module")
def modelless(tmp_path_factory):
    """The same app over an empty project folder: nothing registered, nothing to serve."""
    home = tmp_path_factory.mktemp("modelless")
    empty = Settings(home=home, tracking_uri=None, admin_token=SecretStr("fuzz-" * 8))
    with TestClient(create_app(settings=empty), raise_server_exceptions=False) as client:
        yield client


@pytest.mark.parametrize("label", OPERATIONS)
def test_without_a_model_every_answer_is_documented(modelless, label):
    schema = fuzzed_schema(modelless.get("/openapi.json").json())
    # Without a model the documented answer is a 503, which the server-error check would flag
    # for being a 5xx: it is replaced by the assertion below (503 no_model, and no other 5xx).
    statuses = fuzz(
        modelless, schema, label, BRIEF, excluded=[*EXCLUDED, checks.not_a_server_error]
    )
    assert not [status for status in statuses if status >= 500 and status != 503], statuses
    if label in PRICED:
        assert 200 not in statuses and statuses[503] > 0, statuses


# --- what the fuzz found, each pinned -------------------------------------------------------------

JSON = {"content-type": "application/json"}
LISTING = EXAMPLE_LISTING  # the API's own documented example
BODIES = {
    "/v1/quote": lambda listing: listing,
    "/v1/quotes": lambda listing: {"listings": [listing]},
    "/v1/appraisal": lambda listing: {"listing": listing, "asking_price": "¥3,800"},
}


def error_of(response, status: int) -> dict:
    assert response.status_code == status, response.text
    answer = response.json()
    assert set(answer) == {"error"} and set(answer["error"]) == {"code", "message", "fields"}
    return answer["error"]


@pytest.mark.parametrize("method, path", [("DELETE", "/healthz"), ("GET", "/v1/quote")])
def test_405_names_the_allowed_methods(client, method, path):
    # Found: the error handler dropped Starlette's Allow header (RFC 9110 requires it).
    response = client.request(method, path)
    assert error_of(response, 405)["code"] == "method_not_allowed"
    assert response.headers["allow"] == ("GET" if path == "/healthz" else "POST")


@pytest.mark.parametrize("path", list(BODIES))
@pytest.mark.parametrize("body", [b"\x80abc", b'{"fans": "\xff"}'])
def test_a_body_that_is_not_utf8_is_422_naming_the_body(client, path, body):
    # Found: an undocumented 400 "There was an error parsing the body", where a body that is
    # not JSON otherwise gets 422.
    error = error_of(client.post(path, content=body, headers=JSON), 422)
    assert error["fields"][0]["field"] == "body" and "UTF-8" in error["message"]


@pytest.mark.parametrize("category", [0, 1.5, True])
def test_a_category_that_is_not_text_is_refused(client, category):
    # Found: `"category": 0` was valued as a category named "0", though the schema says string.
    error = error_of(client.post("/v1/quote", json={**LISTING, "category": category}), 422)
    assert [problem["field"] for problem in error["fields"]] == ["category"]


def test_a_numeric_listing_id_is_read_as_text(client):
    # Found: numeric ids were taken but undocumented; they are now in the schema (string or integer).
    answer = client.post("/v1/quote", json={**LISTING, "listing_id": 1024})
    assert answer.status_code == 200 and answer.json()["listing_id"] == "1024"


def test_a_refused_batch_entry_echoes_its_listing_id_only_when_readable(client):
    # Found by the property test below: an unreadable id (a lone surrogate) was echoed back raw,
    # and the whole answer failed to encode (500).
    listings = [{**LISTING, "listing_id": "\ud800"}, {**LISTING, "fans": "?", "listing_id": "KS-1"}]
    body = json.dumps({"listings": listings}).encode()  # ASCII: the surrogate as \ud800
    answer = client.post("/v1/quotes", content=body, headers=JSON)
    assert answer.status_code == 200, answer.text
    assert [entry["listing_id"] for entry in answer.json()["results"]] == [None, "KS-1"]


def test_the_document_states_the_limits(served_schema, client):
    spec = client.get("/openapi.json").json()
    for path in BODIES:
        assert {"400", "413", "422"} <= set(spec["paths"][path]["post"]["responses"])
    fans = spec["components"]["schemas"]["ListingIn"]["properties"]["fans"]["anyOf"]
    assert {"type": "integer", "minimum": 0, "maximum": MAX_FANS} in fans


@pytest.mark.parametrize("level", ["nan", "inf", "-inf", "1e308", "0.8\x00", "0,8"])
def test_a_level_that_is_not_a_number_in_range_is_422(client, level):
    error = error_of(client.post("/v1/quote", params={"level": level}, json=LISTING), 422)
    assert [problem["field"] for problem in error["fields"]] == ["level"]


# --- hostile values at the request model and through the routes ----------------------------------

FIELD_NAMES = [field.name for field in FEATURES]
hostile_listing = st.fixed_dictionaries(
    {},
    optional={name: st.one_of(json_hostile_value, st.just(LISTING[name])) for name in FIELD_NAMES}
    | {"listing_id": json_hostile_value},
)


@HOSTILE
@given(hostile_listing)
def test_listing_in_reads_or_names_each_bad_field(values):
    try:
        listing = ListingIn.model_validate(values)
    except ValidationError as error:
        problems = field_problems(error.errors())
        assert {problem["field"] for problem in problems} <= {*FIELD_NAMES, "listing_id"}
        json.dumps(problems, ensure_ascii=False).encode("utf-8")  # as the error answer will be
        return
    assert type(listing.fans) is int and 0 <= listing.fans <= MAX_FANS
    assert 0 < len(listing.category) <= MAX_CATEGORY_LENGTH and listing.category.isprintable()
    assert listing.listing_id is None or listing.listing_id.isprintable()


@HOSTILE
@given(path=st.sampled_from(list(BODIES)), listing=hostile_listing)
def test_hostile_listings_are_answered_200_or_422_in_shape(client, path, listing):
    # Sent as ASCII JSON, so lone surrogates and NaN reach the app as a client could send them.
    body = json.dumps(BODIES[path](listing)).encode()
    response = client.post(path, content=body, headers=JSON)
    assert response.status_code in (200, 422), response.text
    answer = response.json()
    if response.status_code == 422:
        assert answer["error"]["code"] == "invalid_request" and answer["error"]["fields"]
    elif path == "/v1/quotes":
        assert answer["quoted"] + answer["failed"] == 1
