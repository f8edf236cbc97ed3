"""Schemathesis against the API's own OpenAPI schema: every operation, bounded examples; no 5xx,
every status code, content type and body as the schema documents."""

from __future__ import annotations

import pytest

schemathesis = pytest.importorskip("schemathesis")
from hypothesis import HealthCheck, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402
from schemathesis.checks import not_a_server_error  # noqa: E402
from schemathesis.specs.openapi.checks import (  # noqa: E402
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from mlplab.web import create_app  # noqa: E402
from mlplab.web.app import Limits  # noqa: E402

CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]
# CSV bodies: a header of the tutorial's features, or anything at all.
schemathesis.openapi.media_type("text/csv", st.one_of(
    st.builds(lambda rows: "x1,x2\n" + "".join(f"{a},{b}\n" for a, b in rows),
              st.lists(st.tuples(st.floats(allow_nan=True), st.floats()), max_size=5)),
    st.text(max_size=60)).map(str.encode))


def _model():
    """The tutorial's 2-5-1 shape with fixed weights: made at import, as schemathesis needs the schema then."""
    import numpy as np
    import torch

    from mlplab.model import MLP
    from mlplab.preprocess import Preprocessor
    from mlplab.run import TrainedModel

    torch.manual_seed(0)
    preprocessor = Preprocessor.fit({"x1": np.array([-1.0, 1.0]), "x2": np.array([-1.0, 1.0])})
    return TrainedModel(MLP(2, [5], 1).eval(), "binary", [0, 1], preprocessor, {})


APP = create_app({"xor": _model()}, limits=Limits(max_rows=20, max_body_bytes=4096))
schema = schemathesis.openapi.from_asgi("/openapi.json", APP)


@schema.parametrize()
@settings(max_examples=40, deadline=None, suppress_health_check=list(HealthCheck))
def test_api_conforms_to_its_schema(case):
    case.call_and_validate(checks=CHECKS)
