/* Block-style YAML 1.1 for the JSON data model: the C twin of recorder/compact/yaml_emit.py.
 *
 * The Python emitter is the reference. This file takes the same decision for every string
 * (plain, single-quoted, literal block or double-quoted), key and container, and so writes the
 * same bytes; it only avoids the Python string per part that made YAML snapshots several times
 * slower to write than JSON ones. tests/test_yaml_emit_c.py holds the two to byte equality.
 *
 * dump(document, sort_keys=False, /) returns the document as UTF-8 bytes ending in a newline,
 * or None when it cannot write it: a str with a lone surrogate has no UTF-8 form, and the caller
 * then hands the whole (rare) document to the Python emitter, which escapes it.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <math.h>
#include <string.h>

#define MAX_SIMPLE_KEY 1000          /* yaml_emit._MAX_SIMPLE_KEY */
#define NOT_HANDLED (-2)             /* a lone surrogate: the Python emitter writes the document */
#define KEEP_BUFFER_MAX (1 << 20)    /* larger buffers are freed after the call, not kept */

/* -- an output buffer that grows by doubling ------------------------------------------------ */

typedef struct {
    char *data;
    size_t len;
    size_t cap;
} Buf;

static int
grow(Buf *b, size_t extra)
{
    size_t cap = b->cap ? b->cap : 4096;
    while (cap - b->len < extra) {
        cap *= 2;
    }
    char *data = PyMem_Realloc(b->data, cap);
    if (data == NULL) {
        PyErr_NoMemory();
        return -1;
    }
    b->data = data;
    b->cap = cap;
    return 0;
}

/* Room for `n` more bytes: callers that write byte by byte reserve their worst case first. */
static inline int
reserve(Buf *b, size_t n)
{
    return (b->cap - b->len < n) ? grow(b, n) : 0;
}

static inline int
put(Buf *b, const void *s, size_t n)
{
    if (reserve(b, n) < 0) {
        return -1;
    }
    memcpy(b->data + b->len, s, n);
    b->len += n;
    return 0;
}

#define PUT_LITERAL(b, s) put((b), (s), sizeof(s) - 1)

/* A newline and `indent` spaces: the start of every line. */
static inline int
put_line(Buf *b, Py_ssize_t indent)
{
    if (reserve(b, (size_t)indent + 1) < 0) {
        return -1;
    }
    b->data[b->len] = '\n';
    memset(b->data + b->len + 1, ' ', (size_t)indent);
    b->len += (size_t)indent + 1;
    return 0;
}

/* -- classifying a string's UTF-8 bytes, as yaml_emit's regular expressions do --------------- */

enum {
    NOT_PLAIN = 1,   /* outside _PLAIN's [A-Za-z0-9 ._/@%+=,:()-] */
    PLAIN_FIRST = 2, /* _PLAIN's first character: [A-Za-z/] */
    CONTROL = 4,     /* outside _ONE_LINE: C0 controls, DEL (and _EXTRA, found via MAYBE_EXTRA) */
    NOT_TEXT = 8,    /* outside _TEXT: CONTROL but tab and newline */
    NEWLINE = 16,
    MAYBE_EXTRA = 32, /* the lead byte of \x80-\x9f, \u2028, \u2029, \ufeff, \ufffe or \uffff */
    COLON = 64,       /* only a string with one can hold `: ` */
};

static unsigned char CLASS[256];

static void
init_classes(void)
{
    for (int c = 0; c < 256; c++) {
        unsigned char cls = 0;
        int letter = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z');
        if (letter || c == '/') {
            cls |= PLAIN_FIRST;
        }
        if (!(letter || (c >= '0' && c <= '9') || (c && strchr(" ._/@%+=,:()-", c)))) {
            cls |= NOT_PLAIN;
        }
        if (c < 0x20 || c == 0x7f) {
            cls |= CONTROL;
            if (c != '\t' && c != '\n') {
                cls |= NOT_TEXT;
            }
        }
        if (c == '\n') {
            cls |= NEWLINE;
        }
        if (c == ':') {
            cls |= COLON;
        }
        if (c == 0xc2 || c == 0xe2 || c == 0xef) {
            cls |= MAYBE_EXTRA;
        }
        CLASS[c] = cls;
    }
}

/* The code point of one of _EXTRA's non-ASCII characters starting at `s`, or 0. The bytes are
 * valid UTF-8 (CPython wrote them), so a lead byte's continuation bytes are there. */
static inline unsigned
extra_at(const unsigned char *s)
{
    switch (s[0]) {
    case 0xc2: /* \x80-\x9f: C1 controls, \x85 a YAML 1.1 line break */
        return s[1] <= 0x9f ? s[1] : 0;
    case 0xe2: /* \u2028, \u2029: line and paragraph separators */
        return (s[1] == 0x80 && (s[2] == 0xa8 || s[2] == 0xa9)) ? 0x2000u + s[2] - 0x80 : 0;
    case 0xef: /* \ufeff (a byte-order mark), \ufffe, \uffff (non-characters) */
        if (s[1] == 0xbb && s[2] == 0xbf) {
            return 0xfeff;
        }
        return (s[1] == 0xbf && s[2] >= 0xbe) ? 0xffc0u + s[2] - 0x80 : 0;
    default:
        return 0;
    }
}

/* The classes of all the string's bytes, OR-ed; an _EXTRA character counts as NOT_TEXT.
 * The hot loop of the emitter: four bytes a step into independent accumulators and no branch
 * per byte; only a string holding a possible lead byte of an _EXTRA character is walked again. */
static inline unsigned
classify(const unsigned char *s, Py_ssize_t n)
{
    unsigned a = 0, b = 0, c = 0, d = 0;
    Py_ssize_t i = 0;
    for (; i + 4 <= n; i += 4) {
        a |= CLASS[s[i]];
        b |= CLASS[s[i + 1]];
        c |= CLASS[s[i + 2]];
        d |= CLASS[s[i + 3]];
    }
    for (; i < n; i++) {
        a |= CLASS[s[i]];
    }
    unsigned seen = a | b | c | d;
    if (seen & MAYBE_EXTRA) {
        for (i = 0; i < n; i++) {
            if ((CLASS[s[i]] & MAYBE_EXTRA) && extra_at(s + i)) {
                return seen | CONTROL | NOT_TEXT;
            }
        }
    }
    return seen;
}

/* One of YAML 1.1's booleans or nulls in any case (go-yaml v2 adds y and n): yaml_emit._WORDS.
 * A switch on the length, not a loop of strcmp: most keys and many values are this short. */
static int
is_keyword(const unsigned char *s, Py_ssize_t n)
{
    char w[5];
    for (Py_ssize_t i = 0; i < n; i++) {
        w[i] = (char)(s[i] | 0x20); /* lower case for letters; a non-letter matches no word */
    }
    switch (n) {
    case 1:
        return w[0] == 'y' || w[0] == 'n';
    case 2:
        return memcmp(w, "no", 2) == 0 || memcmp(w, "on", 2) == 0;
    case 3:
        return memcmp(w, "yes", 3) == 0 || memcmp(w, "off", 3) == 0;
    case 4:
        return memcmp(w, "true", 4) == 0 || memcmp(w, "null", 4) == 0;
    case 5:
        return memcmp(w, "false", 5) == 0;
    default:
        return 0;
    }
}

/* _PLAIN.fullmatch and _plain_ok: no `: `, no trailing `:` or space, not a YAML 1.1 keyword. */
static int
is_plain(const unsigned char *s, Py_ssize_t n, unsigned seen)
{
    if (n == 0 || (seen & NOT_PLAIN) || !(CLASS[s[0]] & PLAIN_FIRST)) {
        return 0;
    }
    if (s[n - 1] == ':' || s[n - 1] == ' ') {
        return 0;
    }
    if (seen & COLON) {
        for (const unsigned char *p = s; (p = memchr(p, ':', (size_t)(s + n - p))) != NULL; p++) {
            if (p[1] == ' ') { /* p is not the last byte: that was checked above */
                return 0;
            }
        }
    }
    return !(n <= 5 && is_keyword(s, n));
}

/* -- scalars -------------------------------------------------------------------------------- */

static const char HEX[] = "0123456789abcdef";

static inline void
put_u_escape(Buf *b, unsigned code)
{
    char *out = b->data + b->len;
    out[0] = '\\';
    out[1] = 'u';
    out[2] = HEX[(code >> 12) & 15];
    out[3] = HEX[(code >> 8) & 15];
    out[4] = HEX[(code >> 4) & 15];
    out[5] = HEX[code & 15];
    b->len += 6;
}

/* double_quoted(): orjson's JSON escapes, then \uXXXX for DEL and YAML's non-ASCII extras. */
static int
put_double_quoted(Buf *b, const unsigned char *s, Py_ssize_t n)
{
    /* At worst a byte becomes six: \u00XX. */
    if (reserve(b, (size_t)n * 6 + 2) < 0) {
        return -1;
    }
    b->data[b->len++] = '"';
    for (const unsigned char *end = s + n; s < end; s++) {
        unsigned char c = *s;
        unsigned extra;
        if (c >= 0x20 && c != '"' && c != '\\' && c != 0x7f && !(CLASS[c] & MAYBE_EXTRA)) {
            b->data[b->len++] = (char)c;
            continue;
        }
        const char *pair = NULL;
        switch (c) {
        case '"': pair = "\\\""; break;
        case '\\': pair = "\\\\"; break;
        case '\n': pair = "\\n"; break;
        case '\r': pair = "\\r"; break;
        case '\t': pair = "\\t"; break;
        case '\b': pair = "\\b"; break;
        case '\f': pair = "\\f"; break;
        default: break;
        }
        if (pair != NULL) {
            b->data[b->len++] = pair[0];
            b->data[b->len++] = pair[1];
        }
        else if (c < 0x80) { /* other C0 controls and DEL */
            put_u_escape(b, c);
        }
        else if ((extra = extra_at(s)) != 0) {
            put_u_escape(b, extra);
            s += extra < 0x100 ? 1 : 2;
        }
        else {
            b->data[b->len++] = (char)c;
        }
    }
    b->data[b->len++] = '"';
    return 0;
}

static int
put_single_quoted(Buf *b, const unsigned char *s, Py_ssize_t n)
{
    if (reserve(b, (size_t)n * 2 + 2) < 0) {
        return -1;
    }
    b->data[b->len++] = '\'';
    const unsigned char *end = s + n;
    for (;;) { /* runs up to and including each quote, which is then written once more */
        const unsigned char *quote = memchr(s, '\'', (size_t)(end - s));
        size_t run = (size_t)((quote ? quote + 1 : end) - s);
        memcpy(b->data + b->len, s, run);
        b->len += run;
        if (quote == NULL) {
            break;
        }
        b->data[b->len++] = '\'';
        s = quote + 1;
    }
    b->data[b->len++] = '\'';
    return 0;
}

/* _scalar_text(): plain when it reads back as itself, single-quoted on one line, else escaped. */
static int
put_text(Buf *b, const unsigned char *s, Py_ssize_t n, unsigned seen)
{
    if (is_plain(s, n, seen)) {
        return put(b, s, (size_t)n);
    }
    if (!(seen & CONTROL)) {
        return put_single_quoted(b, s, n);
    }
    return put_double_quoted(b, s, n);
}

/* _literal(): ` |`, ` |-` or ` |+` and the lines at `indent`, an empty line left empty. */
static int
put_literal(Buf *b, const unsigned char *s, Py_ssize_t n, Py_ssize_t indent)
{
    if (s[n - 1] != '\n') {
        if (PUT_LITERAL(b, " |-\n") < 0) {
            return -1;
        }
    }
    else {
        int keep = n >= 2 && s[n - 2] == '\n';
        if ((keep ? PUT_LITERAL(b, " |+\n") : PUT_LITERAL(b, " |\n")) < 0) {
            return -1;
        }
        n -= 1;
    }
    const unsigned char *end = s + n;
    for (;;) {
        const unsigned char *stop = memchr(s, '\n', (size_t)(end - s));
        size_t len = (size_t)((stop ? stop : end) - s);
        if (len > 0) {
            if (reserve(b, (size_t)indent + len) < 0) {
                return -1;
            }
            memset(b->data + b->len, ' ', (size_t)indent);
            memcpy(b->data + b->len + indent, s, len);
            b->len += (size_t)indent + len;
        }
        if (stop == NULL) {
            return 0;
        }
        if (put(b, "\n", 1) < 0) {
            return -1;
        }
        s = stop + 1;
    }
}

/* A str's UTF-8 (kept by CPython inside the str, so not encoded twice), or NOT_HANDLED. */
static inline int
utf8_of(PyObject *text, const unsigned char **s, Py_ssize_t *n)
{
    if (PyUnicode_IS_COMPACT_ASCII(text)) { /* nearly every string: its bytes are its UTF-8 */
        *s = (const unsigned char *)PyUnicode_DATA(text);
        *n = PyUnicode_GET_LENGTH(text);
        return 0;
    }
    const char *data = PyUnicode_AsUTF8AndSize(text, n);
    if (data == NULL) {
        if (PyErr_ExceptionMatches(PyExc_UnicodeEncodeError)) {
            PyErr_Clear();
            return NOT_HANDLED;
        }
        return -1;
    }
    *s = (const unsigned char *)data;
    return 0;
}

static int
put_int(Buf *b, PyObject *value)
{
    int overflow;
    long long number = PyLong_AsLongLongAndOverflow(value, &overflow);
    if (overflow) { /* beyond 64 bits: Python's own digits (and its int_max_str_digits) */
        PyObject *text = PyObject_Str(value);
        if (text == NULL) {
            return -1;
        }
        Py_ssize_t n;
        const char *digits = PyUnicode_AsUTF8AndSize(text, &n);
        int rc = digits == NULL ? -1 : put(b, digits, (size_t)n);
        Py_DECREF(text);
        return rc;
    }
    if (number == -1 && PyErr_Occurred()) {
        return -1;
    }
    char digits[24];
    char *p = digits + sizeof(digits);
    unsigned long long magnitude = number < 0 ? 0ull - (unsigned long long)number
                                              : (unsigned long long)number;
    do {
        *--p = (char)('0' + magnitude % 10);
        magnitude /= 10;
    } while (magnitude);
    if (number < 0) {
        *--p = '-';
    }
    return put(b, p, (size_t)(digits + sizeof(digits) - p));
}

/* _float(): repr(), with `.0` before an exponent that has no dot (YAML 1.1 floats need one). */
static int
put_float(Buf *b, double value)
{
    if (isnan(value)) {
        return PUT_LITERAL(b, ".nan");
    }
    if (isinf(value)) {
        return value > 0 ? PUT_LITERAL(b, ".inf") : PUT_LITERAL(b, "-.inf");
    }
    char *text = PyOS_double_to_string(value, 'r', 0, Py_DTSF_ADD_DOT_0, NULL);
    if (text == NULL) {
        return -1;
    }
    const char *exponent = strchr(text, 'e');
    int rc;
    if (exponent != NULL && strchr(text, '.') == NULL) {
        rc = put(b, text, (size_t)(exponent - text));
        rc = rc < 0 ? rc : PUT_LITERAL(b, ".0");
        rc = rc < 0 ? rc : put(b, exponent, strlen(exponent));
    }
    else {
        rc = put(b, text, strlen(text));
    }
    PyMem_Free(text);
    return rc;
}

static int
not_json(PyObject *value)
{
    PyErr_Format(PyExc_TypeError, "not a JSON value: %s", Py_TYPE(value)->tp_name);
    return -1;
}

/* inline_scalar(): a scalar on one line (keys, whole-document scalars), or TypeError. */
static int
put_inline(Buf *b, PyObject *value)
{
    if (PyUnicode_CheckExact(value)) {
        const unsigned char *s;
        Py_ssize_t n;
        int rc = utf8_of(value, &s, &n);
        return rc ? rc : put_text(b, s, n, classify(s, n));
    }
    if (value == Py_None) {
        return PUT_LITERAL(b, "null");
    }
    if (PyBool_Check(value)) {
        return value == Py_True ? PUT_LITERAL(b, "true") : PUT_LITERAL(b, "false");
    }
    if (PyLong_CheckExact(value)) {
        return put_int(b, value);
    }
    if (PyFloat_CheckExact(value)) {
        return put_float(b, PyFloat_AS_DOUBLE(value));
    }
    return not_json(value);
}

/* _inline(): an empty map or list as flow `{}` / `[]`, anything else as inline_scalar(). */
static int
put_inline_or_empty(Buf *b, PyObject *value)
{
    if (PyDict_CheckExact(value) && PyDict_GET_SIZE(value) == 0) {
        return PUT_LITERAL(b, "{}");
    }
    if (PyList_CheckExact(value) && PyList_GET_SIZE(value) == 0) {
        return PUT_LITERAL(b, "[]");
    }
    return put_inline(b, value);
}

/* -- containers ----------------------------------------------------------------------------- */

typedef struct {
    Buf out;
    int sort_keys;
    /* The next line joins the line of a list item's `-` (YamlEmitter._list's parts[first]). */
    int join;
} Emitter;

static int emit_map(Emitter *e, PyObject *map, Py_ssize_t indent);
static int emit_list(Emitter *e, PyObject *list, Py_ssize_t indent);

static inline int
line_start(Emitter *e, Py_ssize_t indent)
{
    if (e->join) {
        e->join = 0;
        return put(&e->out, " ", 1);
    }
    return put_line(&e->out, indent);
}

/* YamlEmitter._key(): `key:`, or `? key` and `:` on their own lines past PyYAML's key limit. */
static int
emit_key(Emitter *e, PyObject *key, Py_ssize_t indent)
{
    Buf *b = &e->out;
    size_t start = b->len;
    int rc = put_inline(b, key);
    if (rc) {
        return rc;
    }
    if (b->len - start > MAX_SIMPLE_KEY) { /* UTF-8 bytes >= characters: only then count */
        size_t chars = 0;
        for (size_t i = start; i < b->len; i++) {
            chars += ((unsigned char)b->data[i] & 0xc0) != 0x80;
        }
        if (chars > MAX_SIMPLE_KEY) {
            if (reserve(b, 2) < 0) {
                return -1;
            }
            memmove(b->data + start + 2, b->data + start, b->len - start);
            memcpy(b->data + start, "? ", 2);
            b->len += 2;
            if (put_line(b, indent) < 0) {
                return -1;
            }
        }
    }
    return put(b, ":", 1);
}

/* A str after `key:` or `-`: a literal block when multi-line text keeps exactly, else inline. */
static int
emit_string(Emitter *e, PyObject *text, Py_ssize_t inner)
{
    const unsigned char *s;
    Py_ssize_t n;
    int rc = utf8_of(text, &s, &n);
    if (rc) {
        return rc;
    }
    unsigned seen = classify(s, n);
    if ((seen & NEWLINE) && !(seen & NOT_TEXT) && s[0] != ' ' && s[0] != '\t' && s[0] != '\n') {
        return put_literal(&e->out, s, n, inner);
    }
    if (put(&e->out, " ", 1) < 0) {
        return -1;
    }
    return put_text(&e->out, s, n, seen);
}

/* The value of a map entry (in_list 0) or a list item (in_list 1) at `indent`. */
static int
emit_child(Emitter *e, PyObject *value, Py_ssize_t indent, int in_list)
{
    if (PyUnicode_CheckExact(value)) {
        return emit_string(e, value, indent + 2);
    }
    if (PyDict_CheckExact(value) && PyDict_GET_SIZE(value)) {
        e->join = in_list;
        return emit_map(e, value, indent + 2);
    }
    if (PyList_CheckExact(value) && PyList_GET_SIZE(value)) {
        e->join = in_list;
        /* A sequence under a key is not indented, as yaml.dump writes it. */
        return emit_list(e, value, in_list ? indent + 2 : indent);
    }
    if (put(&e->out, " ", 1) < 0) {
        return -1;
    }
    return put_inline_or_empty(&e->out, value);
}

static int
emit_entry(Emitter *e, PyObject *key, PyObject *value, Py_ssize_t indent)
{
    int rc = line_start(e, indent);
    rc = rc ? rc : emit_key(e, key, indent);
    return rc ? rc : emit_child(e, value, indent, 0);
}

/* Entries in sorted order; keys of types that do not compare keep their order, as sorted() in
 * YamlEmitter._map leaves them. All-str keys (every manifest) sort without a tuple per entry. */
static int
emit_sorted_map(Emitter *e, PyObject *map, Py_ssize_t indent)
{
    Py_ssize_t pos = 0;
    PyObject *key, *value;
    int all_str = 1;
    while (all_str && PyDict_Next(map, &pos, &key, NULL)) {
        all_str = PyUnicode_CheckExact(key);
    }
    PyObject *entries = all_str ? PyDict_Keys(map) : PyDict_Items(map);
    if (entries == NULL) {
        return -1;
    }
    if (PyList_Sort(entries) < 0) {
        if (all_str || !PyErr_ExceptionMatches(PyExc_TypeError)) {
            Py_DECREF(entries);
            return -1;
        }
        PyErr_Clear();
        Py_SETREF(entries, PyDict_Items(map));
        if (entries == NULL) {
            return -1;
        }
    }
    int rc = 0;
    for (Py_ssize_t i = 0; rc == 0 && i < PyList_GET_SIZE(entries); i++) {
        PyObject *entry = PyList_GET_ITEM(entries, i);
        if (all_str) {
            key = entry;
            value = PyDict_GetItemWithError(map, key);
            if (value == NULL) { /* only a key's __eq__ failing: it is an exact str */
                rc = -1;
                if (!PyErr_Occurred()) {
                    PyErr_SetObject(PyExc_KeyError, key);
                }
                break;
            }
        }
        else {
            key = PyTuple_GET_ITEM(entry, 0);
            value = PyTuple_GET_ITEM(entry, 1);
        }
        Py_INCREF(value);
        rc = emit_entry(e, key, value, indent);
        Py_DECREF(value);
    }
    Py_DECREF(entries);
    return rc;
}

static int
emit_map(Emitter *e, PyObject *map, Py_ssize_t indent)
{
    if (Py_EnterRecursiveCall(" while writing YAML")) {
        return -1;
    }
    int rc = 0;
    if (e->sort_keys) {
        rc = emit_sorted_map(e, map, indent);
    }
    else {
        Py_ssize_t pos = 0;
        PyObject *key, *value;
        while (rc == 0 && PyDict_Next(map, &pos, &key, &value)) {
            /* Held, should a sort's __lt__ below change this dict while it is walked. */
            Py_INCREF(key);
            Py_INCREF(value);
            rc = emit_entry(e, key, value, indent);
            Py_DECREF(key);
            Py_DECREF(value);
        }
    }
    Py_LeaveRecursiveCall();
    return rc;
}

static int
emit_list(Emitter *e, PyObject *list, Py_ssize_t indent)
{
    if (Py_EnterRecursiveCall(" while writing YAML")) {
        return -1;
    }
    int rc = 0;
    for (Py_ssize_t i = 0; rc == 0 && i < PyList_GET_SIZE(list); i++) {
        PyObject *item = Py_NewRef(PyList_GET_ITEM(list, i));
        rc = line_start(e, indent);
        rc = rc ? rc : put(&e->out, "-", 1);
        rc = rc ? rc : emit_child(e, item, indent, 1);
        Py_DECREF(item);
    }
    Py_LeaveRecursiveCall();
    return rc;
}

/* -- the module ----------------------------------------------------------------------------- */

/* One buffer kept between calls, so a document costs no allocation; a call made while it is in
 * use (another thread, while a sort compares keys) gets a buffer of its own. */
static Buf kept;
static int kept_in_use;

static PyObject *
dump(PyObject *module, PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs < 1 || nargs > 2) {
        PyErr_SetString(PyExc_TypeError, "dump(document, sort_keys=False, /)");
        (void)module;
        return NULL;
    }
    int sort_keys = nargs == 2 ? PyObject_IsTrue(args[1]) : 0;
    if (sort_keys < 0) {
        return NULL;
    }
    int own = kept_in_use;
    Emitter e = {.out = own ? (Buf){NULL, 0, 0} : kept, .sort_keys = sort_keys, .join = 0};
    e.out.len = 0;
    kept_in_use = 1;

    PyObject *document = args[0];
    size_t skip = 0; /* a map or list starts with a line break, which the document does not */
    int rc;
    if (PyDict_CheckExact(document) && PyDict_GET_SIZE(document)) {
        rc = emit_map(&e, document, 0);
        skip = 1;
    }
    else if (PyList_CheckExact(document) && PyList_GET_SIZE(document)) {
        rc = emit_list(&e, document, 0);
        skip = 1;
    }
    else {
        rc = put_inline_or_empty(&e.out, document);
    }
    rc = rc ? rc : put(&e.out, "\n", 1);

    PyObject *result = NULL;
    if (rc == 0) {
        result = PyBytes_FromStringAndSize(e.out.data + skip, (Py_ssize_t)(e.out.len - skip));
    }
    else if (rc == NOT_HANDLED) {
        result = Py_NewRef(Py_None);
    }
    if (own) {
        PyMem_Free(e.out.data);
    }
    else {
        if (e.out.cap > KEEP_BUFFER_MAX) {
            PyMem_Free(e.out.data);
            e.out = (Buf){NULL, 0, 0};
        }
        kept = e.out;
        kept_in_use = 0;
    }
    return result;
}

static PyMethodDef methods[] = {
    {"dump", (PyCFunction)(void (*)(void))dump, METH_FASTCALL,
     "dump(document, sort_keys=False, /) -> bytes | None\n\n"
     "The document as block-style YAML, byte for byte what YamlEmitter.dump writes (UTF-8),\n"
     "or None when a str holds a lone surrogate (the Python emitter escapes those)."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT,
    .m_name = "recorder.compact._yamlemit",
    .m_doc = "YamlEmitter.dump in C: the same bytes, without a Python string per part.",
    .m_size = -1,
    .m_methods = methods,
};

PyMODINIT_FUNC
PyInit__yamlemit(void)
{
    init_classes();
    return PyModule_Create(&module);
}
