"""The Dagster UI for `ecomwh serve`, refusing requests that a web page could forge.

Dagster's webserver has no login and trusts whoever reaches it; `dagster dev` serves it on
127.0.0.1, which keeps other machines out but not the analyst's own browser. Any page open in it can
send requests to 127.0.0.1: a GraphQL mutation as a GET (an image tag), a form POST, a WebSocket, or
a request through a name that a DNS-rebinding attacker points at 127.0.0.1. So this process serves
the same Dagster app behind one ASGI guard:

- the Host header must name this server (127.0.0.1:<port> or localhost:<port>): DNS rebinding;
- a request or WebSocket with an Origin must come from the UI's own origin: cross-site requests
  (browsers send Origin on every cross-origin POST, fetch and WebSocket);
- GraphQL over GET may only read: a mutation needs a POST, which carries an Origin.

Local programs (curl, scripts, `ecomwh serve`'s readiness check) send no Origin and are let in:
they run as a local user already (docs/serving.md, "Threat model"). Dagster's daemon (schedules,
sensors, runs launched here) runs beside it, started by `ecomwh serve`.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
from urllib.parse import parse_qs

from starlette.types import ASGIApp, Receive, Scope, Send

READ_ONLY_METHODS = {"GET", "HEAD", "OPTIONS"}


class LocalOriginGuard:
    def __init__(self, app: ASGIApp, port: int) -> None:
        self.app = app
        self.hosts = {f"127.0.0.1:{port}", f"localhost:{port}"}
        self.origins = {f"http://{h}" for h in self.hosts}

    def refusal(self, scope: Scope) -> str | None:
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope.get("headers", [])}
        host = headers.get("host", "")
        if host not in self.hosts:
            return f"Host {host!r} is not this server"
        origin = headers.get("origin")
        if origin is not None and origin not in self.origins:
            return f"cross-origin request from {origin!r} refused"
        if scope["type"] == "http" and scope["method"] in READ_ONLY_METHODS and scope["path"].endswith("/graphql"):
            query = parse_qs(scope.get("query_string", b"").decode("latin-1")).get("query", [""])[0]
            if _writes(query):
                return "GraphQL mutations and subscriptions must be sent as POST"
        return None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        reason = self.refusal(scope)
        if reason is None:
            await self.app(scope, receive, send)
            return
        logging.getLogger("ecomwh.dagster_ui").warning(f"refused {scope.get('path')}: {reason}")
        if scope["type"] == "websocket":
            await send({"type": "websocket.close", "code": 1008})  # before accept: HTTP 403
            return
        body = f"Forbidden: {reason}\n".encode()
        await send({"type": "http.response.start", "status": 403,
                    "headers": [(b"content-type", b"text/plain; charset=utf-8"),
                                (b"content-length", str(len(body)).encode())]})
        await send({"type": "http.response.body", "body": body})


def _writes(query: str) -> bool:
    """Whether a GraphQL document has any operation other than a query. A document that does not
    parse is refused too: it is not the UI's, and Dagster would only answer with an error."""
    if not query.strip():
        return False
    from graphql import GraphQLError, OperationDefinitionNode, OperationType, parse

    try:
        document = parse(query)
    except GraphQLError:
        return True
    return any(isinstance(d, OperationDefinitionNode) and d.operation != OperationType.QUERY
               for d in document.definitions)


def main(argv: list[str] | None = None) -> None:
    import uvicorn
    from dagster import DagsterInstance
    # Dagster has no public API that hands over its webserver app to wrap: these two private imports
    # are what dagster-webserver's own CLI uses (pinned to dagster 1.13.x in pyproject).
    from dagster._core.workspace.context import WorkspaceProcessContext
    from dagster._core.workspace.load_target import WorkspaceFileTarget
    from dagster_webserver.app import create_app_from_workspace_process_context
    from dagster_webserver.version import __version__

    p = argparse.ArgumentParser(prog="python -m dagster_project.dagster_ui", description=__doc__.splitlines()[0])
    p.add_argument("-w", "--workspace", required=True)
    p.add_argument("--port", type=int, required=True)
    args = p.parse_args(argv)

    @contextlib.asynccontextmanager
    async def lifespan(app):
        with contextlib.suppress(asyncio.CancelledError):  # how uvicorn ends the lifespan on SIGTERM
            yield

    with DagsterInstance.get() as instance, WorkspaceProcessContext(
        instance, WorkspaceFileTarget(paths=[args.workspace]), version=__version__,
    ) as context:
        app = create_app_from_workspace_process_context(context, lifespan=lifespan)
        uvicorn.run(LocalOriginGuard(app, args.port), host="127.0.0.1", port=args.port, log_level="warning")


if __name__ == "__main__":
    main()
