"""magic-foundation queue names <-> NATS subjects (README.md, "Subjects").

Queue "scheme://a/b" is subject "<namespace>.scheme.a.b". In the scheme and
each segment "%" is "%25" and "." is "%2E"; an empty segment is "%" alone.
subject_to_queue() returns None for a token magic-foundation never writes
(urllib's quote() and unquote() do not fit: quote("") is "", quote() leaves
"." and escapes "*", ":", "é"...; unquote("%") is "%" and it reads "%2e").
magic-foundation also refuses a result that is not a valid queue name (an
empty path, white space...).
"""


def escape(text: str) -> str:
    return text.replace("%", "%25").replace(".", "%2E") or "%"


def unescape(token: str):
    text = "" if token == "%" else token.replace("%2E", ".").replace("%25", "%")
    return text if escape(text) == token else None


def queue_to_subject(queue: str, namespace: str = "mf") -> str:
    scheme, path = queue.split("://", 1)
    return ".".join([namespace, escape(scheme), *map(escape, path.split("/"))])


def subject_to_queue(subject: str, namespace: str = "mf"):
    if not subject.startswith(namespace + "."):
        return None
    texts = [unescape(token) for token in subject[len(namespace) + 1 :].split(".")]
    if len(texts) < 2 or None in texts:
        return None
    return texts[0] + "://" + "/".join(texts[1:])
