"""The least a validating webhook can be: an aiohttp HTTPS server that parses each review with orjson and
refuses a pod only when an image starts with a given prefix (so that a bench can prove it is in the path).

    python bench/minimal_webhook.py PORT CERT KEY PREFIX

What `kyverno_bench.py` measures beside Kyverno and distroguard: the cost of calling any webhook at all,
to the API server and to a server that decides next to nothing.
"""

from __future__ import annotations

import sys

import orjson
from aiohttp import web


def app(prefix: str) -> web.Application:
    async def review(request: web.Request) -> web.Response:
        document = orjson.loads(await request.read())
        asked = document["request"]
        spec = (asked.get("object") or {}).get("spec") or {}
        refused = [c["image"] for c in spec.get("containers", []) if c.get("image", "").startswith(prefix)]
        response: dict[str, object] = {"uid": asked["uid"], "allowed": not refused}
        if refused:
            response["status"] = {"code": 403, "message": f"refused by the minimal webhook: {refused[0]}"}
        body = {"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "response": response}
        return web.Response(body=orjson.dumps(body), content_type="application/json")

    served = web.Application()
    served.router.add_post("/pods", review)
    return served


def main() -> None:
    import ssl

    port, cert, key, prefix = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4]
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert, key)
    web.run_app(app(prefix), host="127.0.0.1", port=int(port), ssl_context=context, access_log=None)


if __name__ == "__main__":
    main()
