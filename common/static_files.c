/* A directory of files under a path prefix. See static_files.h. */
#include "common/static_files.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static const struct {
    const char *ext, *type;
} TYPES[] = {
    {".html", "text/html; charset=utf-8"},    {".js", "text/javascript; charset=utf-8"},
    {".css", "text/css; charset=utf-8"},      {".svg", "image/svg+xml"},
    {".png", "image/png"},                    {".json", "application/json"},
    {".map", "application/json"},             {".ico", "image/x-icon"},
    {".txt", "text/plain; charset=utf-8"},
};

const char *static_media_type(const char *name)
{
    const char *dot = strrchr(name, '.');
    for (size_t i = 0; dot && i < sizeof TYPES / sizeof TYPES[0]; i++)
        if (strcmp(dot, TYPES[i].ext) == 0)
            return TYPES[i].type;
    return "application/octet-stream";
}

bool static_name_ok(const char *name)
{
    size_t n = strlen(name);
    if (n == 0 || n > 200)
        return false;
    bool seg_start = true;
    for (size_t i = 0; i < n; i++) {
        char c = name[i];
        if (c == '/') {
            if (seg_start) /* empty segment */
                return false;
            seg_start = true;
            continue;
        }
        bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' ||
                  c == '_' || c == '-';
        if (!ok || (seg_start && c == '.'))
            return false;
        seg_start = false;
    }
    return !seg_start;
}

static void serve(http_req *r, const static_files *sf, const char *name)
{
    if (!sf->dir) {
        http_reply_problem(r, 404, "Not Found", "no status page here: this daemon has no ui_dir configured", NULL);
        return;
    }
    if (!static_name_ok(name)) {
        http_reply_problem(r, 404, "Not Found", "no such file", NULL);
        return;
    }
    char path[1024];
    if ((size_t)snprintf(path, sizeof path, "%s/%s", sf->dir, name) >= sizeof path) {
        http_reply_problem(r, 404, "Not Found", "no such file", NULL);
        return;
    }
    int fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
    struct stat st;
    if (fd < 0 || fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        if (fd >= 0)
            close(fd);
        http_reply_problem(r, 404, "Not Found", "no such file", NULL);
        return;
    }
    const char *type = static_media_type(name);
    http_add_header(r, "Cache-Control", "no-cache");
    http_add_header(r, "X-Content-Type-Options", "nosniff");
    if (strncmp(type, "text/html", 9) == 0) {
        const char *base = strrchr(name, '/') ? strrchr(name, '/') + 1 : name;
        /* a player page fetches its media wherever the playlist points, and
         * hls.js feeds MSE from blob: URLs and a worker */
        http_add_header(r, "Content-Security-Policy",
                        strncmp(base, "player", 6) == 0
                            ? "default-src 'self'; connect-src *; media-src 'self' blob:; worker-src 'self' blob:; "
                              "img-src 'self' data:; frame-ancestors 'none'"
                            : "default-src 'self'; img-src 'self' data:; frame-ancestors 'none'");
        http_add_header(r, "Referrer-Policy", "no-referrer");
    }
    http_reply_fd(r, 200, type, fd, 0, (uint64_t)st.st_size);
}

static void on_dir(http_req *r, void *ctx)
{
    static_files *sf = ctx;
    if (strcmp(http_path(r), sf->prefix) == 0) {
        http_add_header(r, "Location", sf->dir_prefix);
        http_reply(r, 308, NULL, NULL, 0);
        return;
    }
    serve(r, sf, "index.html");
}

static void on_file(http_req *r, void *ctx)
{
    static_files *sf = ctx;
    serve(r, sf, http_path(r) + strlen(sf->dir_prefix));
}

void static_files_routes(static_files *sf, const char *dir, const char *prefix, http_routes *out)
{
    sf->dir = dir;
    sf->prefix = prefix;
    snprintf(sf->dir_prefix, sizeof sf->dir_prefix, "%s/", prefix);
    snprintf(sf->file_prefix, sizeof sf->file_prefix, "%s/*", prefix);
    http_routes_add(out, (http_route){"GET", sf->prefix, on_dir, sf, true});
    http_routes_add(out, (http_route){"GET", sf->dir_prefix, on_dir, sf, true});
    http_routes_add(out, (http_route){"GET", sf->file_prefix, on_file, sf, true});
}
