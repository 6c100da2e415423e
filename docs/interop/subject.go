// Package subject maps magic-foundation queue names to NATS subjects and back
// (README.md, "Subjects").
//
// Queue "scheme://a/b" is subject "<namespace>.scheme.a.b". In the scheme and
// each segment "%" is "%25" and "." is "%2E"; an empty segment is "%" alone.
// SubjectToQueue refuses a token magic-foundation never writes
// (url.PathUnescape does not fit: it refuses "%" and reads "%2e");
// magic-foundation also refuses a result that is not a valid queue name (an
// empty path, white space, ...).
package subject

import "strings"

var (
	escaper   = strings.NewReplacer("%", "%25", ".", "%2E")
	unescaper = strings.NewReplacer("%25", "%", "%2E", ".")
)

func escape(text string) string {
	if text == "" {
		return "%"
	}
	return escaper.Replace(text)
}

// QueueToSubject is the NATS subject of a queue name or pattern.
func QueueToSubject(queue, namespace string) string {
	scheme, path, _ := strings.Cut(queue, "://")
	tokens := []string{namespace, escape(scheme)}
	for _, segment := range strings.Split(path, "/") {
		tokens = append(tokens, escape(segment))
	}
	return strings.Join(tokens, ".")
}

// SubjectToQueue is the queue of a subject, or false for a token we never write.
func SubjectToQueue(subject, namespace string) (string, bool) {
	rest, ok := strings.CutPrefix(subject, namespace+".")
	tokens := strings.Split(rest, ".")
	if !ok || len(tokens) < 2 {
		return "", false
	}
	for i, token := range tokens {
		text := ""
		if token != "%" {
			text = unescaper.Replace(token)
		}
		if escape(text) != token {
			return "", false
		}
		tokens[i] = text
	}
	return tokens[0] + "://" + strings.Join(tokens[1:], "/"), true
}
