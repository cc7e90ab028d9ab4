package translate

import "strings"

// parseDataURL splits a base64 data URL ("data:image/png;base64,....") into its media
// type and payload; ok is false for any other URL and for one without a media type.
func parseDataURL(u string) (media, data string, ok bool) {
	rest, ok := strings.CutPrefix(u, "data:")
	if !ok {
		return "", "", false
	}
	header, data, ok := strings.Cut(rest, ",")
	if !ok || !strings.HasSuffix(header, ";base64") {
		return "", "", false
	}
	media, _, _ = strings.Cut(header, ";")
	return media, data, media != ""
}
