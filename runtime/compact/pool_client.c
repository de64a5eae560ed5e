/*
 * `slr pool run` without the interpreter: the compact slr's static front (slr_front.c)
 * calls slr_pool_run() first; it serves the plain pool-run command line by speaking the
 * pool protocol (runtime/slruntime/pool/PROTOCOL.md) itself, and returns 0 for anything
 * else, before it has done anything observable, so the frozen Python CLI the front then
 * executes runs the same command line with exactly its own behaviour.
 *
 * Served: `slr [--root DIR] pool run [-d] [-t] [-e K=V]... [--cwd DIR] NAME [--] ARGS...`,
 * with /etc/slr/slr.conf (or $SLR_CONFIG) read for `root` as the Python CLI does; with
 * -t the terminal is relayed by terminal_relay.c.
 * Left to Python: every other command and flag (--log, --debug, --help, ...),
 * malformed or unusual input (a bad slr.conf, one that sets `log`, a flag without its
 * value, arguments that are not UTF-8, a socket path too long for sockaddr_un): the
 * Python CLI knows how to report those, and they are not the fast path.
 *
 * Every message, exit status and request byte is the Python client's
 * (slruntime/pool/cli.py, client.py, wire.py); runtime/tests/test_pool_protocol.py runs
 * the same cases through both and compares. No allocation: fixed buffers, every copy
 * bounded by a check against the protocol's 64 KiB message limit.
 */
#define _GNU_SOURCE
#include "pool_client.h"
#include "terminal_relay.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#define MAX_MESSAGE 65536 /* wire.MAX_MESSAGE: one request or answer */
#define MAX_FDS 3
#define MAX_CONFIG 65536  /* a larger slr.conf is left to Python */
#define MAX_PATH_TEXT 4096
#define MAX_JSON_DEPTH 512 /* deeper than any answer; bounds the recursion (frames of ~64 bytes) */

/* slruntime.signals.FORWARDED_SIGNALS */
static const int forwarded_signals[] = {SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGUSR1, SIGUSR2, SIGWINCH, SIGCONT};


/* ---- the command line ------------------------------------------------------------------ */

/* A run of argv entries. */
struct span {
    char **items;
    int count;
};

struct pool_run {
    const char *root;      /* from --root; NULL when not given */
    const char *name;
    struct span options;   /* the flags between `run` and the name */
    struct span args[2];   /* the process's args: before and after the first "--" */
    const char *cwd;
    int detach;
    int terminal;          /* -t: the process gets a pty, relayed to the caller's terminal */
};

static int
starts_with(const char *text, const char *prefix)
{
    return strncmp(text, prefix, strlen(prefix)) == 0;
}

/* Strict UTF-8 (no overlong forms, no surrogates, at most U+10FFFF): what Python decodes
 * without surrogate escapes. Anything else is left to Python. */
static int
is_utf8(const unsigned char *text)
{
    while (*text) {
        unsigned int c = *text, length, code;
        if (c < 0x80) {
            text++;
            continue;
        } else if (c >= 0xc2 && c <= 0xdf) {
            length = 2, code = c & 0x1f;
        } else if (c >= 0xe0 && c <= 0xef) {
            length = 3, code = c & 0x0f;
        } else if (c >= 0xf0 && c <= 0xf4) {
            length = 4, code = c & 0x07;
        } else {
            return 0;
        }
        for (unsigned int i = 1; i < length; i++) {
            if ((text[i] & 0xc0) != 0x80) {
                return 0;
            }
            code = code << 6 | (text[i] & 0x3f);
        }
        if ((length == 3 && (code < 0x800 || (code >= 0xd800 && code <= 0xdfff)))
                || (length == 4 && (code < 0x10000 || code > 0x10ffff))) {
            return 0;
        }
        text += length;
    }
    return 1;
}

static int
is_flag(const char *arg, const char *short_name, const char *long_name)
{
    return strcmp(arg, short_name) == 0 || strcmp(arg, long_name) == 0;
}

static int
is_inline_flag(const char *arg, const char *short_name, const char *long_name)
{
    size_t short_length = strlen(short_name), long_length = strlen(long_name);
    return (strncmp(arg, short_name, short_length) == 0 && arg[short_length] == '=')
           || (strncmp(arg, long_name, long_length) == 0 && arg[long_length] == '=');
}

/* Calls `found` for each -e/--env value of the options, in order; 0 if an option is not
 * one of -d/--detach, -t/--tty, -e/--env, --cwd (with their values) or is missing its
 * value. */
static int
scan_options(struct span options, const char **cwd, int *detach, int *terminal,
             int (*found)(const char *env, void *context), void *context)
{
    for (int i = 0; i < options.count; i++) {
        const char *arg = options.items[i];
        const char *value = NULL;
        int is_env = is_flag(arg, "-e", "--env") || is_inline_flag(arg, "-e", "--env");
        if (is_flag(arg, "-d", "--detach")) {
            *detach = 1;
            continue;
        }
        if (is_flag(arg, "-t", "--tty")) {
            *terminal = 1;
            continue;
        }
        if (is_flag(arg, "-e", "--env") || strcmp(arg, "--cwd") == 0) {
            if (++i >= options.count) {
                return 0;
            }
            value = options.items[i];
        } else if (is_env || starts_with(arg, "--cwd=")) {
            value = strchr(arg, '=') + 1;
        } else {
            return 0; /* --help, unknown flags, --detach=false, -detach, -dt... */
        }
        if (!is_env) {
            *cwd = value; /* the last one wins, as in parse_options */
        } else if (found != NULL && !found(value, context)) {
            return 0;
        }
    }
    return 1;
}

/* pool.valid_name: one path component of letters, digits and _+-., up to 200, not "." or
 * "..". Another name gets Python's "invalid pool name" message. */
static int
valid_pool_name(const char *name)
{
    size_t length = strlen(name);
    if (length == 0 || length > 200 || strcmp(name, ".") == 0 || strcmp(name, "..") == 0) {
        return 0;
    }
    for (const char *c = name; *c != '\0'; c++) {
        int alphanumeric = (*c >= 'a' && *c <= 'z') || (*c >= 'A' && *c <= 'Z') || (*c >= '0' && *c <= '9');
        if (!alphanumeric && strchr("_+-.", *c) == NULL) {
            return 0;
        }
    }
    return 1;
}

/* 1 when the Python CLI would parse argv as a plain `pool run` this file serves; mirrors
 * cli.main's global options loop and pool/cli.py's parse_options(..., stop_at_positional). */
static int
parse_command_line(int argc, char **argv, struct pool_run *run)
{
    memset(run, 0, sizeof(*run));
    for (int k = 1; k < argc; k++) {
        if (!is_utf8((const unsigned char *)argv[k])) {
            return 0;
        }
    }
    int i = 1;
    while (i < argc && argv[i][0] == '-') {
        if (strcmp(argv[i], "--root") == 0 && i + 1 < argc) {
            run->root = argv[i + 1];
            i += 2;
        } else if (starts_with(argv[i], "--root=")) {
            run->root = argv[i] + strlen("--root=");
            i++;
        } else {
            return 0;
        }
    }
    if (i + 1 >= argc || strcmp(argv[i], "pool") != 0 || strcmp(argv[i + 1], "run") != 0) {
        return 0;
    }
    int first = i + 2, dash_dash = argc, name_at = -1;
    for (i = first; i < argc; i++) {
        if (strcmp(argv[i], "--") == 0) {
            dash_dash = i;
            break;
        }
        if (name_at >= 0) {
            continue; /* stop_at_positional: everything after the name is an argument */
        }
        if (argv[i][0] == '-' && argv[i][1] != '\0') {
            /* A flag; skip the value of those that take one (checked by scan_options). */
            if (is_flag(argv[i], "-e", "--env") || strcmp(argv[i], "--cwd") == 0) {
                i++;
            }
            continue;
        }
        name_at = i;
    }
    if (name_at >= 0) {
        run->options = (struct span){argv + first, name_at - first};
        run->args[0] = (struct span){argv + name_at + 1, dash_dash - name_at - 1};
    } else {
        run->options = (struct span){argv + first, (dash_dash < argc ? dash_dash : argc) - first};
        name_at = dash_dash + 1;
        if (name_at >= argc) {
            return 0; /* no name: Python's usage error */
        }
        dash_dash = name_at; /* the args follow the name */
    }
    run->name = argv[name_at];
    if (!valid_pool_name(run->name)) {
        return 0;
    }
    if (dash_dash < argc) {
        run->args[1] = (struct span){argv + dash_dash + 1, argc - dash_dash - 1};
    }
    if (run->args[0].count + run->args[1].count == 0) {
        return 0; /* no args: Python's usage error */
    }
    return scan_options(run->options, &run->cwd, &run->detach, &run->terminal, NULL, NULL);
}

/* ---- slr.conf and the socket's path ----------------------------------------------------- */

static int
is_space(char c)
{
    return c == ' ' || c == '\t';
}

/* Copies [start, end) without surrounding blanks into out (size MAX_PATH_TEXT); 0 if too long. */
static int
copy_stripped(const char *start, const char *end, char *out)
{
    while (start < end && is_space(*start)) {
        start++;
    }
    while (end > start && is_space(end[-1])) {
        end--;
    }
    if ((size_t)(end - start) >= MAX_PATH_TEXT) {
        return 0;
    }
    memcpy(out, start, (size_t)(end - start));
    out[end - start] = '\0';
    return 1;
}

/* config.load() for the keys `pool run` uses: `root` into root (empty when unset).
 * 0 when Python must handle it: unreadable, malformed, bytes that Python's line
 * splitting or decoding treats differently, or a `log` that errors must also go to. */
static int
read_config(char *root)
{
    static char text[MAX_CONFIG + 1];
    const char *path = getenv("SLR_CONFIG");
    root[0] = '\0';
    if (path == NULL) {
        path = "/etc/slr/slr.conf";
    }
    if (path[0] == '\0') {
        return 1;
    }
    int fd;
    do {
        fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
    } while (fd < 0 && errno == EINTR);
    if (fd < 0) {
        return errno == ENOENT;
    }
    size_t length = 0;
    for (;;) {
        ssize_t got = read(fd, text + length, sizeof(text) - length);
        if (got < 0 && errno == EINTR) {
            continue;
        }
        if (got <= 0) {
            close(fd);
            if (got < 0 || length == sizeof(text)) {
                return 0;
            }
            break;
        }
        length += (size_t)got;
        if (length == sizeof(text)) {
            close(fd);
            return 0;
        }
    }
    char log[MAX_PATH_TEXT], value[MAX_PATH_TEXT], key[MAX_PATH_TEXT];
    log[0] = '\0';
    const char *line = text, *end = text + length;
    for (size_t k = 0; k < length; k++) {
        unsigned char c = (unsigned char)text[k];
        if (c >= 0x80 || (c < 0x20 && c != '\n' && c != '\t')) {
            return 0; /* \r, \v, \f, \x1c-\x1e split lines for Python; non-ASCII: its decoding */
        }
    }
    while (line < end) {
        const char *newline = memchr(line, '\n', (size_t)(end - line));
        const char *line_end = newline != NULL ? newline : end;
        const char *hash = memchr(line, '#', (size_t)(line_end - line));
        const char *content_end = hash != NULL ? hash : line_end;
        const char *equals = memchr(line, '=', (size_t)(content_end - line));
        if (!copy_stripped(line, content_end, value)) {
            return 0;
        }
        if (value[0] != '\0') {
            if (equals == NULL || !copy_stripped(line, equals, key)
                    || !copy_stripped(equals + 1, content_end, value)) {
                return 0;
            }
            if (strcmp(key, "root") == 0) {
                strcpy(root, value);
            } else if (strcmp(key, "log") == 0) {
                strcpy(log, value);
            } else if (strcmp(key, "log-format") == 0) {
                if (strcmp(value, "text") != 0 && strcmp(value, "json") != 0) {
                    return 0;
                }
            } else if (strcmp(key, "seccomp-default") != 0 && strcmp(key, "housekeeping-cpus") != 0) {
                return 0;
            }
        }
        line = line_end + 1;
    }
    return log[0] == '\0';
}

/* os.path.join(path, part) into path (size MAX_PATH_TEXT); 0 if too long. */
static int
path_join(char *path, const char *part)
{
    size_t length = strlen(path), part_length = strlen(part);
    if (part[0] == '/') {
        length = 0;
    } else if (length > 0 && path[length - 1] != '/') {
        if (length + 1 >= MAX_PATH_TEXT) {
            return 0;
        }
        path[length++] = '/';
    }
    if (length + part_length >= MAX_PATH_TEXT) {
        return 0;
    }
    memcpy(path + length, part, part_length + 1);
    return 1;
}

/* pool.socket_path(root or cli.default_root(), name); 0 if too long. */
static int
socket_path(const char *root, const char *name, char *path)
{
    path[0] = '\0';
    if (root != NULL && root[0] != '\0') {
        if (!path_join(path, root)) {
            return 0;
        }
    } else if (geteuid() == 0) {
        strcpy(path, "/run/slr");
    } else {
        const char *runtime_dir = getenv("XDG_RUNTIME_DIR");
        if (runtime_dir != NULL && runtime_dir[0] != '\0') {
            if (!path_join(path, runtime_dir) || !path_join(path, "slr")) {
                return 0;
            }
        } else {
            snprintf(path, MAX_PATH_TEXT, "/tmp/slr-%u", (unsigned int)geteuid());
        }
    }
    return path_join(path, "pools") && path_join(path, name) && path_join(path, "pool.sock");
}

/* ---- the request: jsonlite.dumps' bytes (compact, ASCII only) --------------------------- */

struct buffer {
    char data[MAX_MESSAGE];
    size_t length;
    int too_long; /* more than MAX_MESSAGE bytes were written */
};

static void
append(struct buffer *out, const char *bytes, size_t length)
{
    if (out->too_long || length > sizeof(out->data) - out->length) {
        out->too_long = 1;
        return;
    }
    memcpy(out->data + out->length, bytes, length);
    out->length += length;
}

static void
append_text(struct buffer *out, const char *text)
{
    append(out, text, strlen(text));
}

/* "\\u" and four lowercase hex digits of a UTF-16 unit, as Python's escapes. */
static void
format_unit(char escape[6], unsigned int unit)
{
    static const char digits[] = "0123456789abcdef";
    escape[0] = '\\', escape[1] = 'u';
    for (int i = 0; i < 4; i++) {
        escape[2 + i] = digits[unit >> (12 - 4 * i) & 0xf];
    }
}

static void
append_escape(struct buffer *out, unsigned int unit)
{
    char escape[6];
    format_unit(escape, unit);
    append(out, escape, sizeof(escape));
}

/* _json.encode_basestring_ascii of a string known to be valid UTF-8. */
static void
append_string(struct buffer *out, const char *text)
{
    const unsigned char *c = (const unsigned char *)text;
    append(out, "\"", 1);
    while (*c) {
        unsigned int code = *c, length = 1;
        if (code >= 0xf0) {
            code &= 0x07, length = 4;
        } else if (code >= 0xe0) {
            code &= 0x0f, length = 3;
        } else if (code >= 0xc0) {
            code &= 0x1f, length = 2;
        }
        for (unsigned int i = 1; i < length; i++) {
            code = code << 6 | (c[i] & 0x3f);
        }
        c += length;
        switch (code) {
        case '"': append(out, "\\\"", 2); break;
        case '\\': append(out, "\\\\", 2); break;
        case '\n': append(out, "\\n", 2); break;
        case '\r': append(out, "\\r", 2); break;
        case '\t': append(out, "\\t", 2); break;
        case '\b': append(out, "\\b", 2); break;
        case '\f': append(out, "\\f", 2); break;
        default:
            if (code >= ' ' && code <= '~') {
                char plain = (char)code;
                append(out, &plain, 1);
            } else if (code >= 0x10000) {
                code -= 0x10000;
                append_escape(out, 0xd800 | (code >> 10));
                append_escape(out, 0xdc00 | (code & 0x3ff));
            } else {
                append_escape(out, code);
            }
        }
    }
    append(out, "\"", 1);
}

static int
append_env(const char *env, void *context)
{
    struct buffer *out = context;
    if (out->length > 0 && out->data[out->length - 1] != '[') {
        append(out, ",", 1);
    }
    append_string(out, env);
    return 1;
}

static int
count_env(const char *env, void *context)
{
    (void)env;
    (*(int *)context)++;
    return 1;
}

/* client.start's request: {"args":[...],"wait":B[,"consoleSize":{"height":H,"width":W}]
 * [,"env":[...]][,"cwd":"..."][,"terminal":true]}; the console size is the caller's
 * terminal's (cli._run), when stdin is one. */
static void
build_request(const struct pool_run *run, struct buffer *out)
{
    const char *cwd = NULL;
    int detach = 0, terminal = 0, env_count = 0;
    append_text(out, "{\"args\":[");
    for (int part = 0, first = 1; part < 2; part++) {
        for (int k = 0; k < run->args[part].count; k++, first = 0) {
            if (!first) {
                append(out, ",", 1);
            }
            append_string(out, run->args[part].items[k]);
        }
    }
    append_text(out, run->detach ? "],\"wait\":false" : "],\"wait\":true");
    struct winsize size;
    if (run->terminal && slr_window_size(0, &size)) {
        char console_size[64];
        snprintf(console_size, sizeof(console_size), ",\"consoleSize\":{\"height\":%u,\"width\":%u}",
                 (unsigned int)size.ws_row, (unsigned int)size.ws_col);
        append_text(out, console_size);
    }
    scan_options(run->options, &cwd, &detach, &terminal, count_env, &env_count);
    if (env_count > 0) {
        append_text(out, ",\"env\":[");
        scan_options(run->options, &cwd, &detach, &terminal, append_env, out);
        append(out, "]", 1);
    }
    if (run->cwd != NULL && run->cwd[0] != '\0') {
        append_text(out, ",\"cwd\":");
        append_string(out, run->cwd);
    }
    if (run->terminal) {
        append_text(out, ",\"terminal\":true");
    }
    append(out, "}", 1);
}

/* ---- the answers: the few JSON values the manager sends --------------------------------- */

/* A string value as the Python CLI would print it: UTF-8, lone surrogates as \udXXX
 * (stderr's backslashreplace) and, with one_line, CR and LF as \r and \n
 * (cli._report_error). Never longer than the JSON text it comes from. */
struct text {
    char *data;
    size_t capacity, length;
    int present; /* 1: a string, -1: some other JSON value, 0: absent */
};

/* Only the fields set are reset between answers: a whole-buffer memset would put pages
 * in the client's resident set for nothing. */
struct answer {
    struct text error, id;
    int pid, exit;
    int has_pid, has_exit;
};

struct parser {
    const char *at, *end;
};

static void
skip_blanks(struct parser *p)
{
    while (p->at < p->end && (*p->at == ' ' || *p->at == '\t' || *p->at == '\n' || *p->at == '\r')) {
        p->at++;
    }
}

static int
hex_unit(struct parser *p, unsigned int *unit)
{
    if (p->end - p->at < 4) {
        return 0;
    }
    *unit = 0;
    for (int i = 0; i < 4; i++) {
        char c = *p->at++;
        unsigned int digit = c >= '0' && c <= '9' ? (unsigned int)(c - '0')
                             : c >= 'a' && c <= 'f' ? (unsigned int)(c - 'a' + 10)
                             : c >= 'A' && c <= 'F' ? (unsigned int)(c - 'A' + 10) : 16;
        if (digit == 16) {
            return 0;
        }
        *unit = *unit << 4 | digit;
    }
    return 1;
}

static void
put(struct text *out, const char *bytes, size_t length)
{
    if (out != NULL && length <= out->capacity - out->length) {
        memcpy(out->data + out->length, bytes, length);
        out->length += length;
    }
}

static void
put_code(struct text *out, unsigned int code, int one_line)
{
    char bytes[8];
    size_t length;
    if (one_line && code == '\n') {
        put(out, "\\n", 2);
        return;
    }
    if (one_line && code == '\r') {
        put(out, "\\r", 2);
        return;
    }
    if (code >= 0xd800 && code <= 0xdfff) {
        format_unit(bytes, code);
        length = 6;
    } else if (code < 0x80) {
        bytes[0] = (char)code, length = 1;
    } else if (code < 0x800) {
        bytes[0] = (char)(0xc0 | code >> 6), bytes[1] = (char)(0x80 | (code & 0x3f)), length = 2;
    } else if (code < 0x10000) {
        bytes[0] = (char)(0xe0 | code >> 12), bytes[1] = (char)(0x80 | (code >> 6 & 0x3f));
        bytes[2] = (char)(0x80 | (code & 0x3f)), length = 3;
    } else {
        bytes[0] = (char)(0xf0 | code >> 18), bytes[1] = (char)(0x80 | (code >> 12 & 0x3f));
        bytes[2] = (char)(0x80 | (code >> 6 & 0x3f)), bytes[3] = (char)(0x80 | (code & 0x3f));
        length = 4;
    }
    put(out, bytes, length);
}

/* A JSON string at p->at (after the quote) into out (NULL: skipped). */
static int
parse_string(struct parser *p, struct text *out, int one_line)
{
    if (out != NULL) {
        out->length = 0;
        out->present = 1;
    }
    while (p->at < p->end) {
        char c = *p->at++;
        if (c == '"') {
            return 1;
        }
        if ((unsigned char)c < 0x20) {
            return 0;
        }
        if (c != '\\') {
            if (one_line && (c == '\n' || c == '\r')) {
                put_code(out, (unsigned char)c, one_line);
            } else {
                put(out, &c, 1);
            }
            continue;
        }
        if (p->at >= p->end) {
            return 0;
        }
        unsigned int code;
        switch (*p->at++) {
        case '"': code = '"'; break;
        case '\\': code = '\\'; break;
        case '/': code = '/'; break;
        case 'b': code = '\b'; break;
        case 'f': code = '\f'; break;
        case 'n': code = '\n'; break;
        case 'r': code = '\r'; break;
        case 't': code = '\t'; break;
        case 'u':
            if (!hex_unit(p, &code)) {
                return 0;
            }
            if (code >= 0xd800 && code <= 0xdbff && p->end - p->at >= 6 && p->at[0] == '\\' && p->at[1] == 'u') {
                struct parser low = {p->at + 2, p->end};
                unsigned int second;
                if (hex_unit(&low, &second) && second >= 0xdc00 && second <= 0xdfff) {
                    code = 0x10000 + ((code - 0xd800) << 10) + (second - 0xdc00);
                    p->at = low.at;
                }
            }
            break;
        default:
            return 0;
        }
        put_code(out, code, one_line);
    }
    return 0;
}

static int parse_value(struct parser *p, int depth);

static int
is_digit(const struct parser *p)
{
    return p->at < p->end && *p->at >= '0' && *p->at <= '9';
}

/* A JSON number (RFC 8259's grammar, as Python's parser takes it); 0 if there is none. */
static int
skip_number(struct parser *p)
{
    if (p->at < p->end && *p->at == '-') {
        p->at++;
    }
    if (!is_digit(p)) {
        return 0;
    }
    if (*p->at++ != '0') {
        while (is_digit(p)) {
            p->at++;
        }
    }
    if (p->at < p->end && *p->at == '.') {
        p->at++;
        if (!is_digit(p)) {
            return 0;
        }
        while (is_digit(p)) {
            p->at++;
        }
    }
    if (p->at < p->end && (*p->at == 'e' || *p->at == 'E')) {
        p->at++;
        if (p->at < p->end && (*p->at == '+' || *p->at == '-')) {
            p->at++;
        }
        if (!is_digit(p)) {
            return 0;
        }
        while (is_digit(p)) {
            p->at++;
        }
    }
    return 1;
}

/* An integer of a C int's range into *number; 0 for anything else (a float, a larger
 * integer, not a number). Leaves p where it was. */
static int
parse_integer(const struct parser *p, int *number)
{
    struct parser scan = *p;
    if (!skip_number(&scan)) {
        return 0;
    }
    const char *digit = p->at + (*p->at == '-');
    long long value = 0;
    for (; digit < scan.at; digit++) {
        if (*digit < '0' || *digit > '9' || value > (long long)INT_MAX + 1) {
            return 0; /* a fraction or an exponent, or too large */
        }
        value = value * 10 + (*digit - '0');
    }
    value = *p->at == '-' ? -value : value;
    if (value < INT_MIN || value > INT_MAX) {
        return 0;
    }
    *number = (int)value;
    return 1;
}

static int
parse_literal(struct parser *p, const char *word)
{
    size_t length = strlen(word);
    if ((size_t)(p->end - p->at) < length || memcmp(p->at, word, length) != 0) {
        return 0;
    }
    p->at += length;
    return 1;
}

/* Skips any JSON value. */
static int
parse_value(struct parser *p, int depth)
{
    skip_blanks(p);
    if (p->at >= p->end || depth > MAX_JSON_DEPTH) {
        return 0;
    }
    char c = *p->at;
    if (c == '"') {
        p->at++;
        return parse_string(p, NULL, 0);
    }
    if (c == '{' || c == '[') {
        char close = c == '{' ? '}' : ']';
        p->at++;
        skip_blanks(p);
        if (p->at < p->end && *p->at == close) {
            p->at++;
            return 1;
        }
        for (;;) {
            if (c == '{') {
                skip_blanks(p);
                if (p->at >= p->end || *p->at++ != '"' || !parse_string(p, NULL, 0)) {
                    return 0;
                }
                skip_blanks(p);
                if (p->at >= p->end || *p->at++ != ':') {
                    return 0;
                }
            }
            if (!parse_value(p, depth + 1)) {
                return 0;
            }
            skip_blanks(p);
            if (p->at < p->end && *p->at == ',') {
                p->at++;
                continue;
            }
            return p->at < p->end && *p->at++ == close;
        }
    }
    if (c == 't' || c == 'f' || c == 'n') {
        return parse_literal(p, "true") || parse_literal(p, "false") || parse_literal(p, "null");
    }
    return skip_number(p);
}

/* One answer object (data has room for a NUL after length); 0 if it is not UTF-8 or not a
 * JSON object. An error or id that is not a string is marked present = -1; a pid or
 * exit that is not an int counts as absent (client.py's checks). */
static int
parse_answer(char *data, size_t length, struct answer *answer)
{
    struct parser p = {data, data + length};
    data[length] = '\0'; /* the buffer has room: for is_utf8 (a NUL is no valid JSON anyway) */
    if (!is_utf8((const unsigned char *)data)) {
        return 0; /* what Python's decoding refuses */
    }
    answer->error.length = answer->id.length = 0;
    answer->error.present = answer->id.present = answer->has_pid = answer->has_exit = 0;
    skip_blanks(&p);
    if (p.at >= p.end || *p.at++ != '{') {
        return 0;
    }
    skip_blanks(&p);
    if (p.at < p.end && *p.at == '}') {
        p.at++;
    } else {
        for (;;) {
            char key_data[8]; /* longer keys are none of those looked for */
            struct text key = {key_data, sizeof(key_data), 0, 0};
            skip_blanks(&p);
            if (p.at >= p.end || *p.at++ != '"' || !parse_string(&p, &key, 0)) {
                return 0;
            }
            skip_blanks(&p);
            if (p.at >= p.end || *p.at++ != ':') {
                return 0;
            }
            skip_blanks(&p);
            struct text *field = NULL;
            if (key.length == 5 && memcmp(key.data, "error", 5) == 0) {
                field = &answer->error;
            } else if (key.length == 2 && memcmp(key.data, "id", 2) == 0) {
                field = &answer->id;
            }
            if (field != NULL && (p.at >= p.end || *p.at != '"')) {
                field->present = -1; /* not a string: what client.py calls malformed */
                field = NULL;
            }
            if (field != NULL) {
                p.at++;
                if (!parse_string(&p, field, field == &answer->error)) {
                    return 0;
                }
            } else {
                if (key.length == 3 && memcmp(key.data, "pid", 3) == 0) {
                    answer->has_pid = parse_integer(&p, &answer->pid);
                } else if (key.length == 4 && memcmp(key.data, "exit", 4) == 0) {
                    answer->has_exit = parse_integer(&p, &answer->exit);
                }
                if (!parse_value(&p, 1)) {
                    return 0;
                }
            }
            skip_blanks(&p);
            if (p.at < p.end && *p.at == ',') {
                p.at++;
                continue;
            }
            if (p.at >= p.end || *p.at++ != '}') {
                return 0;
            }
            break;
        }
    }
    skip_blanks(&p);
    return p.at == p.end;
}

/* ---- talking to the manager ------------------------------------------------------------- */

static void
write_all(int fd, const char *data, size_t length, int *failed)
{
    while (length > 0) {
        ssize_t written = write(fd, data, length);
        if (written < 0 && errno == EINTR) {
            continue;
        }
        if (written <= 0) {
            *failed = 1;
            return;
        }
        data += written;
        length -= (size_t)written;
    }
}

/* cli._report_error: "slr: MESSAGE" on stderr, one line; prefix and text are joined. */
int
slr_report(const char *prefix, const char *text, size_t text_length)
{
    int failed = 0;
    write_all(2, "slr: ", 5, &failed);
    write_all(2, prefix, strlen(prefix), &failed);
    write_all(2, text, text_length, &failed);
    write_all(2, "\n", 1, &failed);
    return 1;
}

/* A message the client composes around a text of the user's or the manager's (a pool
 * name, a path, a container id): CR and LF in it are shown as \r and \n, as
 * cli._report_error does. */
static int
report_with(const char *before, const char *user_text, size_t user_length, const char *after)
{
    static char shown_data[2 * MAX_MESSAGE + MAX_PATH_TEXT]; /* CR, LF: two bytes each */
    struct text shown = {shown_data, sizeof(shown_data), 0, 0};
    for (size_t k = 0; k < user_length; k++) {
        if (user_text[k] == '\n' || user_text[k] == '\r') {
            put_code(&shown, (unsigned char)user_text[k], 1);
        } else {
            put(&shown, user_text + k, 1); /* UTF-8 already */
        }
    }
    put(&shown, after, strlen(after));
    return slr_report(before, shown.data, shown.length);
}

/* client.start's message for a socket that cannot be made or connected to. */
static int
report_socket_error(const char *path, int error)
{
    char reason[256];
    snprintf(reason, sizeof(reason), ": %s", strerror(error));
    return report_with("pool socket ", path, strlen(path), reason);
}

static int
report_errno(const char *prefix, int error)
{
    const char *reason = strerror(error);
    return slr_report(prefix, reason, strlen(reason));
}

/* cli.main's line for an unexpected OSError: "slr: [Errno N] REASON". */
static int
report_os_error(int error)
{
    char number[32];
    snprintf(number, sizeof(number), "[Errno %d] ", error);
    return report_errno(number, error);
}

static volatile pid_t container_pid;

/* signals.forward_signals' handler: a process that is gone already is no error. A
 * resized terminal also resizes the pty being relayed (-t). */
static void
forward_signal(int signal_number)
{
    int saved = errno;
    if (signal_number == SIGWINCH) {
        slr_copy_window_size();
    }
    kill(container_pid, signal_number);
    errno = saved;
}

/* Before the container runs, SIGINT ends the client with 130 as the Python CLI's
 * KeyboardInterrupt does; the other signals keep their default action. */
static void
interrupted(int signal_number)
{
    (void)signal_number;
    _exit(130);
}

static void
set_handler(int signal_number, void (*handler)(int))
{
    struct sigaction action;
    memset(&action, 0, sizeof(action));
    action.sa_handler = handler;
    action.sa_flags = SA_RESTART;
    sigemptyset(&action.sa_mask);
    sigaction(signal_number, &action, NULL);
}

/* recvmsg of one answer. With pty, the first descriptor that comes with it is kept
 * there (-1 if none: the pty master of a terminal request); any other is closed.
 * Returns its length, 0 at end-of-file, -1 with errno set. */
static ssize_t
receive(int sock, char *data, size_t size, int *pty)
{
    union {
        char space[CMSG_SPACE(MAX_FDS * sizeof(int))];
        struct cmsghdr align;
    } control;
    struct iovec iov = {data, size};
    struct msghdr message = {0};
    message.msg_iov = &iov;
    message.msg_iovlen = 1;
    message.msg_control = control.space;
    message.msg_controllen = sizeof(control.space);
    ssize_t length;
    if (pty != NULL) {
        *pty = -1;
    }
    do {
        length = recvmsg(sock, &message, MSG_CMSG_CLOEXEC);
    } while (length < 0 && errno == EINTR);
    if (length >= 0) {
        for (struct cmsghdr *header = CMSG_FIRSTHDR(&message); header != NULL;
             header = CMSG_NXTHDR(&message, header)) {
            if (header->cmsg_level == SOL_SOCKET && header->cmsg_type == SCM_RIGHTS) {
                size_t count = (header->cmsg_len - CMSG_LEN(0)) / sizeof(int);
                for (size_t k = 0; k < count; k++) {
                    int fd;
                    memcpy(&fd, CMSG_DATA(header) + k * sizeof(int), sizeof(int));
                    if (pty != NULL && *pty < 0) {
                        *pty = fd;
                    } else {
                        close(fd);
                    }
                }
            }
        }
    }
    return length;
}

/* The request, with stdin, stdout and stderr as SCM_RIGHTS unless it asks for a
 * terminal (wire.send). */
static ssize_t
send_request(int sock, const struct buffer *request, int terminal)
{
    static const int stdio[MAX_FDS] = {0, 1, 2};
    union {
        char space[CMSG_SPACE(sizeof(stdio))];
        struct cmsghdr align;
    } control;
    struct iovec iov = {(void *)request->data, request->length};
    struct msghdr message = {0};
    message.msg_iov = &iov;
    message.msg_iovlen = 1;
    if (!terminal) {
        message.msg_control = control.space;
        message.msg_controllen = sizeof(control.space);
        struct cmsghdr *header = CMSG_FIRSTHDR(&message);
        header->cmsg_level = SOL_SOCKET;
        header->cmsg_type = SCM_RIGHTS;
        header->cmsg_len = CMSG_LEN(sizeof(stdio));
        memcpy(CMSG_DATA(header), stdio, sizeof(stdio));
    }
    ssize_t sent;
    do {
        sent = sendmsg(sock, &message, MSG_NOSIGNAL);
    } while (sent < 0 && errno == EINTR);
    return sent;
}

/* client.start + cli._run without a terminal; returns the exit status. */
static int
serve(const struct pool_run *run, const char *path)
{
    static struct buffer request;
    static char received[MAX_MESSAGE + 1], error_data[MAX_MESSAGE], id_data[MAX_MESSAGE];
    static char finished_error[MAX_MESSAGE], finished_id[MAX_MESSAGE];
    struct answer answer = {.error = {error_data, sizeof(error_data), 0, 0}, .id = {id_data, sizeof(id_data), 0, 0}};
    struct answer finished = {.error = {finished_error, sizeof(finished_error), 0, 0},
                              .id = {finished_id, sizeof(finished_id), 0, 0}};

    set_handler(SIGINT, interrupted);
    signal(SIGPIPE, SIG_IGN); /* as the interpreter does: a closed pipe is an EPIPE */
    build_request(run, &request);

    struct sockaddr_un address = {.sun_family = AF_UNIX};
    size_t path_length = strlen(path);
    memcpy(address.sun_path, path, path_length); /* checked to fit by the caller */
    int sock = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
    if (sock < 0) {
        return report_socket_error(path, errno);
    }
    int connected;
    do {
        connected = connect(sock, (struct sockaddr *)&address,
                            (socklen_t)(offsetof(struct sockaddr_un, sun_path) + path_length));
    } while (connected < 0 && errno == EINTR);
    if (connected < 0) {
        int error = errno;
        close(sock);
        if (error == ENOENT || error == ECONNREFUSED) {
            return report_with("pool ", run->name, strlen(run->name), " is not running");
        }
        return report_socket_error(path, error);
    }
    if (request.too_long) {
        close(sock);
        slr_report("pool: message too long: a pool message holds at most 65536 bytes", "", 0);
        return 1;
    }
    if (send_request(sock, &request, run->terminal) < 0 && errno != EPIPE && errno != ECONNRESET) {
        /* EPIPE, ECONNRESET: refused; the answer saying why is queued behind the reset */
        int error = errno;
        close(sock);
        return report_errno("pool: ", error);
    }
    int pty = -1; /* left open on the ways out below, as the Python client does: the process ends */
    ssize_t length = receive(sock, received, MAX_MESSAGE, run->terminal ? &pty : NULL);
    if (length < 0) {
        int error = errno;
        close(sock);
        return report_errno("pool: ", error);
    }
    if (length == 0) {
        close(sock);
        return slr_report("pool: the manager closed the connection", "", 0);
    }
    if (!parse_answer(received, (size_t)length, &answer) || answer.error.present < 0
            || (!answer.error.present && (answer.id.present != 1 || !answer.has_pid || answer.pid <= 0))) {
        close(sock);
        return slr_report("pool: the manager's answer is not one of the protocol's", "", 0);
    }
    if (answer.error.present) {
        close(sock);
        return slr_report("", answer.error.data, answer.error.length);
    }
    if (run->detach) {
        int failed = 0;
        close(sock);
        write_all(1, answer.id.data, answer.id.length, &failed);
        write_all(1, "\n", 1, &failed);
        return failed ? 120 : 0; /* 120: as the interpreter when stdout cannot be written */
    }
    container_pid = (pid_t)answer.pid;
    for (size_t k = 0; k < sizeof(forwarded_signals) / sizeof(forwarded_signals[0]); k++) {
        set_handler(forwarded_signals[k], forward_signal);
    }
    if (run->terminal && pty >= 0) {
        int error = slr_relay_terminal(pty);
        if (error != 0) {
            close(sock);
            return report_os_error(error);
        }
    }
    length = receive(sock, received, MAX_MESSAGE, NULL);
    int error = errno;
    close(sock);
    if (length < 0) {
        return report_os_error(error);
    }
    if (length == 0 || !parse_answer(received, (size_t)length, &finished) || !finished.has_exit) {
        return report_with("pool: lost the manager while ", answer.id.data, answer.id.length, " ran");
    }
    return finished.exit;
}

int
slr_pool_run(int argc, char **argv, int *status)
{
    struct pool_run run;
    char config_root[MAX_PATH_TEXT], path[MAX_PATH_TEXT];
    if (!parse_command_line(argc, argv, &run) || !read_config(config_root)) {
        return 0;
    }
    /* The command line's --root wins over slr.conf's, even when empty. */
    if (!socket_path(run.root != NULL ? run.root : config_root, run.name, path)
            || strlen(path) > sizeof(((struct sockaddr_un *)0)->sun_path)
            || !is_utf8((const unsigned char *)path)) {
        return 0; /* Python has its own message for an AF_UNIX path too long */
    }
    *status = serve(&run, path);
    return 1;
}
