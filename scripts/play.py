#!/usr/bin/env python3
"""A minimal HLS player for trying the gateway: fetches a master playlist,
follows redirects, keeps each host's cookies, picks the first variant, and
fetches its segments, printing who answered and how (X-Cache).

    scripts/play.py 'http://video.example.com/vod/m1/master.m3u8?URISigningPackage=...' \\
        --connect video.example.com=127.0.0.1:8083 [--segments 3] [--json] [--cacert CA.pem]

--connect sends a host's connections elsewhere while its Host header stays
(no DNS here). Exit status 0 when every object arrived whole, else 1.
Standard library only; also imported by the integration tests."""
import argparse
import http.client
import json
import socket
import ssl
import sys
import urllib.parse


class _TLS(http.client.HTTPSConnection):
    """HTTPS to an address of our choosing, verified for the URL's host name."""

    def __init__(self, addr, port, name, ctx):
        super().__init__(addr, port, timeout=15, context=ctx)
        self._name = name

    def connect(self):
        raw = socket.create_connection((self.host, self.port), self.timeout)
        self.sock = self._context.wrap_socket(raw, server_hostname=self._name)


class Player:
    def __init__(self, connect=None, max_redirects=5, cafile=None):
        self.connect = dict(connect or {})
        self.tls = ssl.create_default_context(cafile=cafile)  # every check on
        self.cookies = {}  # authority -> {name: value}
        self.max_redirects = max_redirects
        self.log = []

    def get(self, url, what):
        """GET with redirects followed; returns (status, final_url, headers, body)."""
        hops = []
        for _ in range(self.max_redirects + 1):
            u = urllib.parse.urlsplit(url)
            target = (u.path or "/") + ("?" + u.query if u.query else "")
            addr = self.connect.get(u.netloc, u.netloc)
            dflt = "443" if u.scheme == "https" else "80"
            host, _, port = addr.rpartition(":") if ":" in addr else (addr, "", dflt)
            if u.scheme == "https":
                c = _TLS(host or addr, int(port or dflt), u.hostname, self.tls)
            else:
                c = http.client.HTTPConnection(host or addr, int(port or dflt), timeout=15)
            h = {"Host": u.netloc, "User-Agent": "cdni-gateway-play/1"}
            jar = self.cookies.get(u.netloc)
            if jar:
                h["Cookie"] = "; ".join("%s=%s" % kv for kv in jar.items())
            c.request("GET", target, headers=h)
            r = c.getresponse()
            body = r.read()
            headers = {k.lower(): v for k, v in r.getheaders()}
            for k, v in r.getheaders():
                if k.lower() == "set-cookie":
                    name, _, rest = v.partition("=")
                    self.cookies.setdefault(u.netloc, {})[name.strip()] = rest.split(";")[0]
            c.close()
            hops.append({"url": url, "status": r.status, "x-cache": headers.get("x-cache", "")})
            if r.status in (301, 302, 303, 307, 308) and "location" in headers:
                url = urllib.parse.urljoin(url, headers["location"])
                continue
            entry = {"what": what, "status": r.status, "bytes": len(body), "hops": hops,
                     "complete": "content-length" not in headers or int(headers["content-length"]) == len(body)}
            self.log.append(entry)
            return r.status, url, headers, body
        raise RuntimeError("too many redirects for " + what)


def uris(playlist):
    """URIs of a playlist: the non-tag lines and the URI attributes of tags."""
    out = []
    for line in playlist.splitlines():
        line = line.strip()
        if not line:
            continue
        if line.startswith("#"):
            i = line.find('URI="')
            if i >= 0:
                out.append(("tag", line[i + 5:line.index('"', i + 5)]))
        else:
            out.append(("uri", line))
    return out


def play(url, connect=None, segments=3, cafile=None):
    p = Player(connect, cafile=cafile)
    s, final, _, body = p.get(url, "master")
    if s != 200:
        return p, False
    variants = [u for kind, u in uris(body.decode(errors="replace")) if kind == "uri"]
    if not variants:
        return p, False
    s, vfinal, _, vbody = p.get(urllib.parse.urljoin(final, variants[0]), "variant")
    if s != 200:
        return p, False
    segs = [u for kind, u in uris(vbody.decode(errors="replace")) if kind == "uri"][:segments]
    ok = bool(segs)
    for i, seg in enumerate(segs):
        s, _, _, _ = p.get(urllib.parse.urljoin(vfinal, seg), "segment %d" % (i + 1))
        ok = ok and s == 200 and p.log[-1]["complete"]
    return p, ok


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("url")
    ap.add_argument("--connect", action="append", default=[], help="HOST=IP:PORT")
    ap.add_argument("--segments", type=int, default=3)
    ap.add_argument("--json", action="store_true")
    ap.add_argument("--cacert", help="PEM bundle to trust for https (default: the system's CAs)")
    a = ap.parse_args()
    connect = dict(c.split("=", 1) for c in a.connect)
    p, ok = play(a.url, connect, a.segments, a.cacert)
    if a.json:
        print(json.dumps(p.log, indent=1))
    else:
        for e in p.log:
            last = e["hops"][-1]
            via = " -> ".join("%d %s" % (h["status"], urllib.parse.urlsplit(h["url"]).netloc) for h in e["hops"])
            print("%-10s %3d %8d B  %-8s %s" % (e["what"], e["status"], e["bytes"], last["x-cache"] or "-", via))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
