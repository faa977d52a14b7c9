/* Files of one directory served read-only under a path prefix: the
 * operator status pages and the scripts they load.
 *
 * GET <prefix> redirects to <prefix>/, which is index.html; GET
 * <prefix>/<name> is the file <dir>/<name>. Names are made of
 * [A-Za-z0-9._-] segments, none starting with '.', and must be regular
 * files (no symbolic link followed at the last step); anything else is
 * 404. The routes are public: the files hold no data, the JSON the pages
 * read stays behind the listener's bearer tokens. HTML pages get a
 * Content-Security-Policy that allows only the page's own scripts, styles
 * and JSON (player pages may also fetch media from anywhere). */
#ifndef COMMON_STATIC_FILES_H
#define COMMON_STATIC_FILES_H

#include "common/http_server.h"

typedef struct {
    const char *dir;    /* NULL: every route answers 404 saying it is not configured */
    const char *prefix; /* "/status" */
    char dir_prefix[80];
    char file_prefix[80];
} static_files;

void static_files_routes(static_files *sf, const char *dir, const char *prefix, http_routes *out);

/* The media type for a file name, by its extension. */
const char *static_media_type(const char *name); /* static text */
/* Is this a name static_files serves (the part after "<prefix>/")? */
bool static_name_ok(const char *name);

#endif
