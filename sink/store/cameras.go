package store

// This file owns the camera registry: checking what declares a camera, keeping its credentials
// apart from its URL, its rows, and the notifications that camera supervisors follow.

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/vigilcam/vigil/configs"
)

// Where a camera was declared.
const (
	// DeclaredAPI: added through the API or the command line, which may change or remove it.
	DeclaredAPI = "api"
	// DeclaredConfig: listed in the YAML configuration, which owns it (see SyncConfigCameras).
	DeclaredConfig = "config"
)

// Errors of the camera registry, besides ErrNotFound.
var (
	// ErrInvalid is wrapped by errors about a camera spec or patch that cannot be accepted.
	ErrInvalid = errors.New("invalid camera")
	// ErrConflict is wrapped when a camera's name is already used by another camera of the tenant.
	ErrConflict = errors.New("name already in use")
	// ErrConfigured is wrapped when the API tries to change or remove a camera that the YAML
	// configuration declares: the next start-up would undo it.
	ErrConfigured = errors.New("declared in the configuration file")
)

// Limits of a camera's fields.
const (
	maxCameraName = 100 // characters
	maxCameraFPS  = 60
	maxURL        = 2048 // bytes
	maxCredential = 256  // bytes, each of username and password
)

// camerasChannel is the notification channel every camera change is announced on, with the
// tenant as payload.
const camerasChannel = "vigil_cameras"

// cameraSyncLock is the first key of the transaction lock that serialises SyncConfigCameras per
// tenant (the second key is the tenant's hash), so replicas starting together do not race.
const cameraSyncLock = 0x63616d73 // "cams"

// redactedPassword stands in for a password wherever a camera's URL is shown.
const redactedPassword = "xxxxx"

// Camera is a registered camera. Its password is kept out of JSON, fmt and slog output: URL shows
// it redacted, and only StreamURL puts it back, for the RTSP client.
type Camera struct {
	// ID is the camera's videos row, which its moments refer to.
	ID     int64  `json:"video_id"`
	Tenant string `json:"tenant"`
	Name   string `json:"name"`
	// URL is the stream URL with the password, if any, replaced by xxxxx.
	URL      string `json:"url"`
	Username string `json:"username,omitempty"`
	// AnalysisFPS is how many frames per second are analysed; 0 uses the configured default.
	AnalysisFPS float64 `json:"analysis_fps,omitempty"`
	// KeyframesOnly decodes only key frames, for cameras too many or too large to decode fully.
	KeyframesOnly bool `json:"keyframes_only"`
	// Enabled cameras are watched; disabled ones stay registered but get no supervisor.
	Enabled bool `json:"enabled"`
	// MotionMask lists the areas whose movement the motion gate ignores.
	MotionMask []configs.Polygon `json:"motion_mask,omitempty"`
	// Priority, 0 to 1, lifts the camera's moments in search ranking.
	Priority float64 `json:"priority"`
	// Declared is DeclaredAPI or DeclaredConfig.
	Declared  string    `json:"declared"`
	CreatedAt time.Time `json:"created_at"`
	UpdatedAt time.Time `json:"updated_at"`

	address  string // the stream URL without user info
	password string
}

// StreamURL returns the stream URL with the credentials in it, for the RTSP client. Never log or
// show it.
func (c Camera) StreamURL() string { return withUser(c.address, c.Username, c.password) }

// String describes the camera without its password; fmt would otherwise print every field.
func (c Camera) String() string { return fmt.Sprintf("camera %d %q %s", c.ID, c.Name, c.URL) }

// LogValue logs the camera without its password.
func (c Camera) LogValue() slog.Value {
	return slog.GroupValue(slog.Int64("id", c.ID), slog.String("name", c.Name), slog.String("url", c.URL))
}

// spec is the camera's declaration, credentials apart from the URL.
func (c Camera) spec() CameraSpec {
	return CameraSpec{
		Name: c.Name, URL: c.address, Username: c.Username, Password: c.password,
		AnalysisFPS: c.AnalysisFPS, KeyframesOnly: c.KeyframesOnly, Enabled: c.Enabled,
		MotionMask: c.MotionMask, Priority: c.Priority,
	}
}

// CameraSpec declares a camera. Credentials go either in the URL's user info
// (rtsp://user:pass@host:554/path, percent-encoded) or in Username and Password, not both; either
// way they are stored apart from the URL.
type CameraSpec struct {
	// Name is unique per tenant, 1 to 100 characters.
	Name string
	// URL is the rtsp:// or rtsps:// stream URL.
	URL      string
	Username string
	Password string
	// AnalysisFPS is in (0, 60]; 0 uses the configured default.
	AnalysisFPS   float64
	KeyframesOnly bool
	Enabled       bool
	// MotionMask lists areas whose movement never counts; at most 32 polygons of 64 points.
	MotionMask []configs.Polygon
	// Priority, 0 to 1, lifts the camera's moments in search ranking.
	Priority float64
}

// camera checks the spec and returns the camera it declares, or an error wrapping ErrInvalid
// that lists every problem and never quotes the credentials.
func (sp CameraSpec) camera() (Camera, error) {
	var problems []string
	c := Camera{
		Name: strings.TrimSpace(sp.Name), Username: sp.Username, password: sp.Password,
		AnalysisFPS: float32Decimal(float32(sp.AnalysisFPS)), KeyframesOnly: sp.KeyframesOnly, Enabled: sp.Enabled,
		MotionMask: sp.MotionMask, Priority: float32Decimal(float32(sp.Priority)),
	}
	switch {
	case c.Name == "":
		problems = append(problems, "name must not be empty")
	case !utf8.ValidString(c.Name) || strings.ContainsFunc(c.Name, unicode.IsControl):
		problems = append(problems, "name must be text without control characters")
	case utf8.RuneCountInString(c.Name) > maxCameraName:
		problems = append(problems, fmt.Sprintf("name must be at most %d characters", maxCameraName))
	}
	address, username, password, hasUser, problem := splitURL(sp.URL)
	if problem != "" {
		problems = append(problems, "url: "+problem)
	}
	c.address = address
	if hasUser {
		if sp.Username != "" || sp.Password != "" {
			problems = append(problems, "credentials must be given in the url or as username and password, not both")
		}
		c.Username, c.password = username, password
	}
	switch {
	case c.password != "" && c.Username == "":
		problems = append(problems, "a password needs a username")
	case len(c.Username) > maxCredential || len(c.password) > maxCredential:
		problems = append(problems, fmt.Sprintf("username and password must be at most %d bytes each", maxCredential))
	}
	if fps := sp.AnalysisFPS; fps != 0 && !(fps > 0 && fps <= maxCameraFPS) {
		problems = append(problems, fmt.Sprintf("analysis_fps must be in (0, %d], got %g", maxCameraFPS, fps))
	}
	if !(sp.Priority >= 0 && sp.Priority <= 1) {
		problems = append(problems, fmt.Sprintf("priority must be 0 to 1, got %g", sp.Priority))
	}
	if err := configs.ValidateMask(sp.MotionMask); err != nil {
		problems = append(problems, "motion_mask: "+err.Error())
	}
	if len(problems) > 0 {
		return Camera{}, fmt.Errorf("%w: %s", ErrInvalid, strings.Join(problems, "; "))
	}
	c.URL = c.redactedURL()
	return c, nil
}

func (c Camera) redactedURL() string {
	if c.password == "" {
		return withUser(c.address, c.Username, "")
	}
	return withUser(c.address, c.Username, redactedPassword)
}

// splitURL checks a stream URL and cuts its user info off. Its problems never quote the URL, which
// may hold a password.
func splitURL(raw string) (address, username, password string, hasUser bool, problem string) {
	if raw == "" {
		return "", "", "", false, "must not be empty"
	}
	if len(raw) > maxURL {
		return "", "", "", false, fmt.Sprintf("must be at most %d bytes", maxURL)
	}
	// The user info is cut off before url.Parse sees it: url.Parse's errors quote the URL.
	rest, userinfo, hasUser := cutUserInfo(raw)
	if hasUser {
		user, pass, _ := strings.Cut(userinfo, ":")
		var err1, err2 error
		username, err1 = url.PathUnescape(user)
		password, err2 = url.PathUnescape(pass)
		if err1 != nil || err2 != nil {
			return "", "", "", false, "the user name or password is not correctly percent-encoded"
		}
	}
	if strings.Contains(rest, "@") {
		// An @ left over means user info that did not split cleanly; the host and path would
		// show part of the password.
		return "", "", "", false, "the user name and password must be percent-encoded (/ ? # @ as %2F %3F %23 %40)"
	}
	u, err := url.Parse(rest)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err // without the quoted URL
		}
		return "", "", "", false, err.Error()
	}
	switch {
	case u.Scheme != "rtsp" && u.Scheme != "rtsps":
		return "", "", "", false, fmt.Sprintf("scheme must be rtsp or rtsps, got %q", u.Scheme)
	case u.Opaque != "" || u.User != nil || u.Hostname() == "":
		return "", "", "", false, "must be rtsp://host[:port]/path"
	}
	return u.String(), username, password, hasUser, ""
}

// cutUserInfo splits "scheme://user:pass@host/path" into "scheme://host/path" and "user:pass".
func cutUserInfo(raw string) (rest, userinfo string, found bool) {
	scheme, after, ok := strings.Cut(raw, "://")
	if !ok {
		return raw, "", false
	}
	authority := after
	if end := strings.IndexAny(after, "/?#"); end >= 0 {
		authority = after[:end]
	}
	at := strings.LastIndex(authority, "@")
	if at < 0 {
		return raw, "", false
	}
	return scheme + "://" + after[at+1:], after[:at], true
}

// withUser puts user info into a URL without any.
func withUser(address, username, password string) string {
	if username == "" {
		return address
	}
	u, err := url.Parse(address)
	if err != nil {
		return address // stored addresses were produced by url.URL.String
	}
	if password == "" {
		u.User = url.User(username)
	} else {
		u.User = url.UserPassword(username, password)
	}
	return u.String()
}

// float32Decimal widens a real column's value to the decimal it was written as (7.3, not
// 7.300000190734863).
func float32Decimal(f float32) float64 {
	x, _ := strconv.ParseFloat(strconv.FormatFloat(float64(f), 'g', -1, 32), 64)
	return x
}

// sameSettings reports whether two cameras would be watched the same way under the same name.
func (c Camera) sameSettings(o Camera) bool {
	return c.Name == o.Name && c.address == o.address && c.Username == o.Username &&
		c.password == o.password && c.AnalysisFPS == o.AnalysisFPS &&
		c.KeyframesOnly == o.KeyframesOnly && c.Enabled == o.Enabled && SameMask(c.MotionMask, o.MotionMask) &&
		c.Priority == o.Priority
}

// SameMask reports whether two motion masks are the same polygons in the same order.
func SameMask(a, b []configs.Polygon) bool {
	return slices.EqualFunc(a, b, func(p, q configs.Polygon) bool { return slices.Equal(p, q) })
}

// CameraPatch changes some of a camera's settings; nil fields stay as they are. A new URL with
// user info replaces the credentials, one without keeps them; Username and Password replace
// them one by one.
type CameraPatch struct {
	Name     *string
	URL      *string
	Username *string
	Password *string
	// AnalysisFPS 0 returns the camera to the configured default.
	AnalysisFPS   *float64
	KeyframesOnly *bool
	Enabled       *bool
	MotionMask    *[]configs.Polygon
	Priority      *float64
}

func (p CameraPatch) apply(sp CameraSpec) CameraSpec {
	set := func(dst *string, v *string) {
		if v != nil {
			*dst = *v
		}
	}
	set(&sp.Name, p.Name)
	if p.URL != nil {
		sp.URL = *p.URL
		if _, _, found := cutUserInfo(*p.URL); found {
			sp.Username, sp.Password = "", ""
		}
	}
	set(&sp.Username, p.Username)
	set(&sp.Password, p.Password)
	if p.AnalysisFPS != nil {
		sp.AnalysisFPS = *p.AnalysisFPS
	}
	if p.KeyframesOnly != nil {
		sp.KeyframesOnly = *p.KeyframesOnly
	}
	if p.Enabled != nil {
		sp.Enabled = *p.Enabled
	}
	if p.MotionMask != nil {
		sp.MotionMask = *p.MotionMask
	}
	if p.Priority != nil {
		sp.Priority = *p.Priority
	}
	return sp
}

const cameraColumns = `video_id, tenant, name, url, username, password, analysis_fps, keyframes_only,
	enabled, declared, created_at, updated_at, motion_mask, priority`

func scanCamera(row pgx.Row) (Camera, error) {
	var c Camera
	var fps *float32
	var priority float32
	err := row.Scan(&c.ID, &c.Tenant, &c.Name, &c.address, &c.Username, &c.password, &fps,
		&c.KeyframesOnly, &c.Enabled, &c.Declared, &c.CreatedAt, &c.UpdatedAt, &c.MotionMask, &priority)
	if errors.Is(err, pgx.ErrNoRows) {
		return c, ErrNotFound
	}
	if err != nil {
		return c, err
	}
	if fps != nil {
		c.AnalysisFPS = float32Decimal(*fps)
	}
	c.Priority = float32Decimal(priority)
	c.URL = c.redactedURL()
	return c, nil
}

func collectCameras(rows pgx.Rows, err error) ([]Camera, error) {
	if err != nil {
		return nil, fmt.Errorf("cameras: %w", err)
	}
	cams, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (Camera, error) { return scanCamera(row) })
	if err != nil {
		return nil, fmt.Errorf("cameras: %w", err)
	}
	return cams, nil
}

// fpsParam stores the configured default as NULL.
func fpsParam(fps float64) *float32 {
	if fps == 0 {
		return nil
	}
	f := float32(fps)
	return &f
}

// AddCamera registers a camera for the tenant, as declared through the API.
func (s *Store) AddCamera(ctx context.Context, tenant string, spec CameraSpec) (Camera, error) {
	c, err := spec.camera()
	if err != nil {
		return Camera{}, err
	}
	var added Camera
	err = pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		if added, err = insertCamera(ctx, tx, tenant, c, DeclaredAPI); err != nil {
			return err
		}
		return notifyCameras(ctx, tx, tenant)
	})
	if err != nil {
		return Camera{}, cameraError(c.Name, err)
	}
	return added, nil
}

// Cameras lists the tenant's cameras by name.
func (s *Store) Cameras(ctx context.Context, tenant string) ([]Camera, error) {
	return collectCameras(s.pool.Query(ctx, "SELECT "+cameraColumns+" FROM cameras WHERE tenant = $1 ORDER BY name", tenant))
}

// AllCameras lists the cameras of every tenant, enabled or not, for the camera supervisors.
func (s *Store) AllCameras(ctx context.Context) ([]Camera, error) {
	return collectCameras(s.pool.Query(ctx, "SELECT "+cameraColumns+" FROM cameras ORDER BY tenant, name"))
}

// Camera returns one of the tenant's cameras.
func (s *Store) Camera(ctx context.Context, tenant string, id int64) (Camera, error) {
	c, err := scanCamera(s.pool.QueryRow(ctx, "SELECT "+cameraColumns+" FROM cameras WHERE tenant = $1 AND video_id = $2", tenant, id))
	if err != nil {
		return c, fmt.Errorf("camera %d: %w", id, err)
	}
	return c, nil
}

// CameraByName returns the tenant's camera with the given name.
func (s *Store) CameraByName(ctx context.Context, tenant, name string) (Camera, error) {
	c, err := scanCamera(s.pool.QueryRow(ctx, "SELECT "+cameraColumns+" FROM cameras WHERE tenant = $1 AND name = $2", tenant, name))
	if err != nil {
		return c, fmt.Errorf("camera %q: %w", name, err)
	}
	return c, nil
}

// UpdateCamera applies patch to one of the tenant's cameras declared through the API.
func (s *Store) UpdateCamera(ctx context.Context, tenant string, id int64, patch CameraPatch) (Camera, error) {
	var updated Camera
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		cur, err := lockCamera(ctx, tx, tenant, id)
		if err != nil {
			return err
		}
		next, err := patch.apply(cur.spec()).camera()
		if err != nil {
			return err
		}
		if updated, err = updateCamera(ctx, tx, id, next, DeclaredAPI); err != nil {
			return cameraError(next.Name, err)
		}
		return notifyCameras(ctx, tx, tenant)
	})
	return updated, err
}

// DeleteCamera removes one of the tenant's cameras declared through the API. Its videos row and
// moments stay, so what it saw is still searchable.
func (s *Store) DeleteCamera(ctx context.Context, tenant string, id int64) error {
	return pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		if _, err := lockCamera(ctx, tx, tenant, id); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, "DELETE FROM cameras WHERE video_id = $1", id); err != nil {
			return fmt.Errorf("camera %d: %w", id, err)
		}
		return notifyCameras(ctx, tx, tenant)
	})
}

// lockCamera reads a camera for a change through the API, which configured cameras refuse.
func lockCamera(ctx context.Context, tx pgx.Tx, tenant string, id int64) (Camera, error) {
	c, err := scanCamera(tx.QueryRow(ctx, "SELECT "+cameraColumns+" FROM cameras WHERE tenant = $1 AND video_id = $2 FOR UPDATE", tenant, id))
	switch {
	case err != nil:
		return c, fmt.Errorf("camera %d: %w", id, err)
	case c.Declared == DeclaredConfig:
		return c, fmt.Errorf("camera %q: %w; change it there", c.Name, ErrConfigured)
	}
	return c, nil
}

// SyncConfigCameras makes the tenant's configured cameras those of specs, matched by name: new
// ones are added, changed ones updated, and configured ones no longer listed removed (their
// moments stay). A camera added through the API under a listed name is taken over by the
// configuration. Cameras are announced only if something changed. Every spec is checked before
// anything is written, and all problems are reported at once.
func (s *Store) SyncConfigCameras(ctx context.Context, tenant string, specs []CameraSpec) error {
	cams := make([]Camera, 0, len(specs))
	names := make([]string, 0, len(specs)) // not nil: name <> ALL(NULL) would match nothing
	var errs []error
	for i, sp := range specs {
		c, err := sp.camera()
		switch {
		case err != nil:
			errs = append(errs, fmt.Errorf("cameras[%d]: %w", i, err))
		case slices.Contains(names, c.Name):
			errs = append(errs, fmt.Errorf("cameras[%d]: %w: name %q is declared twice", i, ErrInvalid, c.Name))
		default:
			cams = append(cams, c)
			names = append(names, c.Name)
		}
	}
	if err := errors.Join(errs...); err != nil {
		return err
	}
	return pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, "SELECT pg_advisory_xact_lock($1, hashtext($2))", cameraSyncLock, tenant); err != nil {
			return fmt.Errorf("sync cameras: lock: %w", err)
		}
		changed := false
		for _, c := range cams {
			cur, err := scanCamera(tx.QueryRow(ctx, "SELECT "+cameraColumns+" FROM cameras WHERE tenant = $1 AND name = $2 FOR UPDATE", tenant, c.Name))
			switch {
			case errors.Is(err, ErrNotFound):
				_, err = insertCamera(ctx, tx, tenant, c, DeclaredConfig)
				changed = true
			case err == nil && (cur.Declared != DeclaredConfig || !cur.sameSettings(c)):
				_, err = updateCamera(ctx, tx, cur.ID, c, DeclaredConfig)
				changed = true
			}
			if err != nil {
				return fmt.Errorf("sync cameras: %w", cameraError(c.Name, err))
			}
		}
		tag, err := tx.Exec(ctx, "DELETE FROM cameras WHERE tenant = $1 AND declared = $2 AND name <> ALL($3)",
			tenant, DeclaredConfig, names)
		if err != nil {
			return fmt.Errorf("sync cameras: %w", err)
		}
		if !changed && tag.RowsAffected() == 0 {
			return nil
		}
		return notifyCameras(ctx, tx, tenant)
	})
}

// insertCamera adds the camera's videos row, which its moments hang off, and its cameras row.
func insertCamera(ctx context.Context, tx pgx.Tx, tenant string, c Camera, declared string) (Camera, error) {
	return scanCamera(tx.QueryRow(ctx, `
		WITH v AS (
			INSERT INTO videos (tenant, kind, name, path, processing_status)
			VALUES ($1, 'camera', $2, $3, 'ready') RETURNING video_id)
		INSERT INTO cameras (video_id, tenant, name, url, username, password, analysis_fps,
			keyframes_only, enabled, declared, motion_mask, priority)
		SELECT video_id, $1, $2, $4, $5, $6, $7, $8, $9, $10, $11, $12 FROM v
		RETURNING `+cameraColumns,
		tenant, c.Name, c.URL, c.address, c.Username, c.password, fpsParam(c.AnalysisFPS),
		c.KeyframesOnly, c.Enabled, declared, maskParam(c.MotionMask), c.Priority))
}

// updateCamera rewrites a camera's settings and keeps its videos row's name and path in step.
func updateCamera(ctx context.Context, tx pgx.Tx, id int64, c Camera, declared string) (Camera, error) {
	updated, err := scanCamera(tx.QueryRow(ctx, `
		UPDATE cameras SET name = $2, url = $3, username = $4, password = $5, analysis_fps = $6,
			keyframes_only = $7, enabled = $8, declared = $9, motion_mask = $10, priority = $11, updated_at = now()
		WHERE video_id = $1 RETURNING `+cameraColumns,
		id, c.Name, c.address, c.Username, c.password, fpsParam(c.AnalysisFPS), c.KeyframesOnly, c.Enabled, declared,
		maskParam(c.MotionMask), c.Priority))
	if err != nil {
		return updated, err
	}
	_, err = tx.Exec(ctx, "UPDATE videos SET name = $2, path = $3, updated_at = now() WHERE video_id = $1",
		id, updated.Name, updated.URL)
	return updated, err
}

// cameraError names the camera in a failed write and turns a taken name into ErrConflict.
func cameraError(name string, err error) error {
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) && pgErr.Code == "23505" && pgErr.ConstraintName == "cameras_tenant_name_key" {
		return fmt.Errorf("camera %q: %w", name, ErrConflict)
	}
	return fmt.Errorf("camera %q: %w", name, err)
}

// notifyCameras announces a change of the tenant's cameras when the transaction commits.
func notifyCameras(ctx context.Context, tx pgx.Tx, tenant string) error {
	if _, err := tx.Exec(ctx, "SELECT pg_notify($1, $2)", camerasChannel, tenant); err != nil {
		return fmt.Errorf("notify camera change: %w", err)
	}
	return nil
}

// WatchCameras signals on the returned channel after every committed camera change, of any
// tenant, so that camera supervisors can reconcile with AllCameras. Signals coalesce: a reader
// busy reconciling finds at most one waiting, which is enough since it reads every camera again.
// It listens on a connection of its own; when that is lost it reconnects, backing off up to 30s,
// and signals once reconnected, since changes may have been missed meanwhile. The channel is
// closed when ctx ends.
func (s *Store) WatchCameras(ctx context.Context, log *slog.Logger) (<-chan struct{}, error) {
	conn, err := s.listenCameras(ctx)
	if err != nil {
		return nil, err
	}
	changes := make(chan struct{}, 1)
	go s.watchCameras(ctx, conn, changes, log)
	return changes, nil
}

func (s *Store) listenCameras(ctx context.Context) (*pgx.Conn, error) {
	conn, err := pgx.ConnectConfig(ctx, s.pool.Config().ConnConfig.Copy())
	if err != nil {
		return nil, fmt.Errorf("camera notifications: %w", err)
	}
	if _, err := conn.Exec(ctx, "LISTEN "+camerasChannel); err != nil {
		conn.Close(context.WithoutCancel(ctx))
		return nil, fmt.Errorf("camera notifications: %w", err)
	}
	return conn, nil
}

// watchCameras owns the listening connection. Reconnecting lives here rather than in each
// supervisor because a lost notification is only recoverable by the one signal that follows it.
func (s *Store) watchCameras(ctx context.Context, conn *pgx.Conn, changes chan<- struct{}, log *slog.Logger) {
	defer close(changes)
	signal := func() {
		select {
		case changes <- struct{}{}:
		default:
		}
	}
	for {
		_, err := conn.WaitForNotification(ctx)
		if err == nil {
			signal()
			continue
		}
		conn.Close(context.WithoutCancel(ctx))
		if ctx.Err() != nil {
			return
		}
		log.Warn("camera notifications lost; reconnecting", "err", err)
		for wait := time.Second; ; wait = min(2*wait, 30*time.Second) {
			select {
			case <-ctx.Done():
				return
			case <-time.After(wait):
			}
			if conn, err = s.listenCameras(ctx); err == nil {
				break
			}
			log.Debug("camera notifications: reconnect failed", "err", err, "retry_in", min(2*wait, 30*time.Second))
		}
		log.Info("camera notifications restored")
		signal()
	}
}

// maskParam stores no mask as an empty list, which the column's NOT NULL wants.
func maskParam(mask []configs.Polygon) []configs.Polygon {
	if mask == nil {
		return []configs.Polygon{}
	}
	return mask
}
