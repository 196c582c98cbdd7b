"""A bare ASGI app that echoes the request body, under the same uvicorn settings as `yard serve`:
the HTTP limit of this machine for a Python server. Usage: python bench/serving_echo.py PORT"""

from __future__ import annotations

import sys

import uvicorn
from starlette.applications import Starlette
from starlette.responses import Response
from starlette.routing import Route


async def echo(request):  # type: ignore[no-untyped-def]
    return Response(await request.body(), media_type="application/json")


async def health(request):  # type: ignore[no-untyped-def]
    return Response(b"{}", media_type="application/json")


app = Starlette(routes=[Route("/echo", echo, methods=["POST"]), Route("/health", health)])

if __name__ == "__main__":
    uvicorn.run(
        app,
        host="127.0.0.1",
        port=int(sys.argv[1]),
        log_level="warning",
        access_log=False,
        lifespan="off",
        loop="uvloop",
        http="httptools",
    )
