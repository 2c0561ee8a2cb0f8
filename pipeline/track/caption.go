package track

import (
	"fmt"
	"sort"
	"strings"
)

// irregular plurals among the COCO class names; the rest take -s or -es.
var irregular = map[string]string{
	"person": "people", "mouse": "mice", "knife": "knives", "sheep": "sheep", "skis": "skis",
	"scissors": "scissors", "broccoli": "broccoli", "hair drier": "hair driers",
}

// Caption describes object counts in words, most numerous first: "2 people and a car". It is the
// caption of a moment when no captioning model is installed.
func Caption(objects map[string]int) string {
	classes := make([]string, 0, len(objects))
	for c, n := range objects {
		if n > 0 {
			classes = append(classes, c)
		}
	}
	sort.Slice(classes, func(i, j int) bool {
		a, b := classes[i], classes[j]
		if objects[a] != objects[b] {
			return objects[a] > objects[b]
		}
		return a < b
	})
	parts := make([]string, len(classes))
	for i, c := range classes {
		parts[i] = count(objects[c], c)
	}
	switch len(parts) {
	case 0:
		return ""
	case 1:
		return parts[0]
	}
	return strings.Join(parts[:len(parts)-1], ", ") + " and " + parts[len(parts)-1]
}

func count(n int, class string) string {
	if n == 1 && (class == "skis" || class == "scissors") {
		return "a pair of " + class
	}
	if n == 1 {
		if strings.ContainsRune("aeiou", rune(class[0])) {
			return "an " + class
		}
		return "a " + class
	}
	return fmt.Sprintf("%d %s", n, plural(class))
}

func plural(class string) string {
	if p, ok := irregular[class]; ok {
		return p
	}
	for _, suffix := range []string{"s", "sh", "ch", "x"} {
		if strings.HasSuffix(class, suffix) {
			return class + "es"
		}
	}
	return class + "s"
}
