package keys

import "net/http"

// RequireAdmin serves next only to the callers the admin API admits: the master key and
// keys of proxy_admin users (proxy_admin_viewer users for GET requests). Others get the
// admin API's OpenAI-style 401 or 403. It guards admin endpoints other packages serve,
// such as the spend reports.
func RequireAdmin(s *Store, masterKey string, next http.Handler) http.Handler {
	a := newAdmin(s, masterKey)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if err := a.authorize(r, r.URL.Path, r.Method != http.MethodGet); err != nil {
			a.reply(w, r.URL.Path, nil, err)
			return
		}
		next.ServeHTTP(w, r)
	})
}
