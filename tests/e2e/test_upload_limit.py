"""The upload size limit is enforced by the Streamlit server itself, not only by the widget.

Streamlit 1.67 uploads a file as a multipart ``PUT /_stcore/upload_file/<session>/<file>``
with an ``X-Xsrftoken`` header matching the ``_streamlit_xsrf`` cookie. The test lets a
real browser session make one small upload to learn its session and token, then sends
raw HTTP to the same route, bypassing the widget's own size check.
"""

from __future__ import annotations

import http.client
import uuid
from urllib.parse import urlsplit

import pytest
from e2e_support import lesion, open_page
from PIL import Image

pytestmark = pytest.mark.e2e

LIMIT_MB = 25  # .streamlit/config.toml: server.maxUploadSize
MB = 1024 * 1024


def multipart(payload: bytes, name: str = "big.jpg") -> tuple[bytes, str]:
    boundary = uuid.uuid4().hex
    head = (
        f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"; filename="{name}"\r\n'
        "Content-Type: image/jpeg\r\n\r\n"
    ).encode()
    return head + payload + f"\r\n--{boundary}--\r\n".encode(), f"multipart/form-data; boundary={boundary}"


def put(base: str, session: str, token: str, size: int, chunked: bool = False) -> int:
    """PUT a ``size``-byte file as the browser would; the HTTP status (413 = refused as too large)."""
    body, content_type = multipart(b"\xff" * size)
    url = urlsplit(base)
    connection = http.client.HTTPConnection(url.hostname, url.port, timeout=60)
    headers = {"Content-Type": content_type, "X-Xsrftoken": token, "Cookie": f"_streamlit_xsrf={token}"}
    path = f"/_stcore/upload_file/{session}/{uuid.uuid4()}"
    try:
        if chunked:  # no Content-Length: the server must count the bytes as they arrive
            pieces = (body[i : i + MB] for i in range(0, len(body), MB))
            connection.request("PUT", path, pieces, headers, encode_chunked=True)
        else:
            connection.request("PUT", path, body, headers)
        return connection.getresponse().status
    except (BrokenPipeError, ConnectionResetError):
        return connection.getresponse().status  # refused mid-body: the answer is already there
    finally:
        connection.close()


@pytest.fixture
def upload_session(app_server, page, tmp_path) -> tuple[str, str]:
    """The session id and XSRF token of a real browser session, from its own first upload."""
    small = tmp_path / "small.png"
    Image.fromarray(lesion(5)).save(small)
    open_page(page, app_server["url"] + "/classify")
    with page.expect_request(lambda r: "/_stcore/upload_file/" in r.url and r.method == "PUT") as seen:
        page.locator("[data-testid='stFileUploaderDropzoneInput']").set_input_files(str(small))
    request = seen.value
    assert request.response().status == 204
    session = urlsplit(request.url).path.split("/")[-2]
    return session, request.all_headers()["x-xsrftoken"]


def test_the_server_refuses_an_upload_over_the_limit_sent_around_the_widget(app_server, upload_session):
    session, token = upload_session
    base = app_server["url"]
    assert put(base, session, token, (LIMIT_MB - 1) * MB) == 204  # the route, session and token are right
    assert put(base, session, token, LIMIT_MB * MB + 1) == 413  # Content-Length checked before the body
    assert put(base, session, token, (LIMIT_MB + 2) * MB, chunked=True) == 413  # counted while streaming
