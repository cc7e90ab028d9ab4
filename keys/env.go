package keys

import (
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
)

// ErrRedisNotConfigured: neither REDIS_URL nor REDIS_HOST is set.
var ErrRedisNotConfigured = errors.New("Redis is not configured: set REDIS_URL (redis://[:password@]host:port[/db]) or REDIS_HOST, REDIS_PORT and REDIS_PASSWORD")

// RedisOptionsFromEnv reads LiteLLM's Redis settings through lookup (os.LookupEnv in
// production): REDIS_URL, or REDIS_HOST with REDIS_PORT (default 6379), REDIS_PASSWORD,
// REDIS_USERNAME, REDIS_DB and REDIS_SSL. Timeouts are short, because the request path
// waits on Redis: a slow Redis should fail a request quickly, not hold it.
func RedisOptionsFromEnv(lookup func(string) (string, bool)) (*redis.Options, error) {
	get := func(name string) string {
		v, _ := lookup(name)
		return strings.TrimSpace(v)
	}
	var opts *redis.Options
	if u := get("REDIS_URL"); u != "" {
		var err error
		if opts, err = redis.ParseURL(u); err != nil {
			return nil, fmt.Errorf("REDIS_URL: %w", err) // ParseURL's errors do not include the password
		}
	} else {
		host := get("REDIS_HOST")
		if host == "" {
			return nil, ErrRedisNotConfigured
		}
		port := get("REDIS_PORT")
		if port == "" {
			port = "6379"
		}
		if p, err := strconv.Atoi(port); err != nil || p <= 0 || p > 65535 {
			return nil, fmt.Errorf("REDIS_PORT %q is not a port number", port)
		}
		opts = &redis.Options{
			Addr:     net.JoinHostPort(host, port),
			Username: get("REDIS_USERNAME"),
			Password: get("REDIS_PASSWORD"),
		}
		if db := get("REDIS_DB"); db != "" {
			n, err := strconv.Atoi(db)
			if err != nil || n < 0 {
				return nil, fmt.Errorf("REDIS_DB %q is not a database number", db)
			}
			opts.DB = n
		}
		if ssl, _ := strconv.ParseBool(get("REDIS_SSL")); ssl {
			opts.TLSConfig = &tls.Config{ServerName: host, MinVersion: tls.VersionTLS12}
		}
	}
	opts.DialTimeout = 2 * time.Second
	opts.ReadTimeout = time.Second
	opts.WriteTimeout = time.Second
	return opts, nil
}
