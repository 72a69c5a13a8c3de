package api

import (
	"bytes"
	"crypto/sha256"
	"embed"
	"encoding/base64"
	"html/template"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"github.com/labstack/echo/v4"

	"github.com/cpis-fhir/cpis/internal/auth"
	"github.com/cpis-fhir/cpis/internal/cpis"
)

// The development authorization server's pages: server-rendered, no
// script at all, one small stylesheet allowed by its hash.

//go:embed templates/dev-authorize.html templates/dev-authorize-error.html templates/dev-launch-refused.html
var devTemplateFS embed.FS

var devTemplates = template.Must(template.ParseFS(devTemplateFS, "templates/*.html"))

// devCSS is the pages' whole style sheet, inline and allowed by its hash
// in the Content-Security-Policy, so that no other inline style or script
// can run.
const devCSS = `body{font-family:system-ui,sans-serif;margin:0;color:#0b0c0c;background:#fff;line-height:1.5}` +
	`header{background:#003087;color:#fff;padding:.5rem 1rem}main{max-width:44rem;padding:1rem}` +
	`.banner{margin:0;font-weight:600}code{overflow-wrap:anywhere}` +
	`.personas{list-style:none;padding:0}.personas li{margin:0 0 1rem}` +
	`button{font:inherit;font-weight:600;padding:.5rem 1rem;border:2px solid #003087;background:#005eb8;color:#fff;cursor:pointer}` +
	`button:focus{outline:3px solid #ffeb3b;outline-offset:2px}.hint{margin:.25rem 0;color:#4c6272}` +
	`.field{margin:1rem 0}label{display:block;font-weight:600}input{font:inherit;padding:.4rem;max-width:100%;border:2px solid #0b0c0c}` +
	`input:focus{outline:3px solid #ffeb3b}.error{border-left:6px solid #d5281b;padding:.25rem 1rem;margin:1rem 0}`

// devCSSHash is the CSP source that allows devCSS.
var devCSSHash = func() string {
	sum := sha256.Sum256([]byte(devCSS))
	return "'sha256-" + base64.StdEncoding.EncodeToString(sum[:]) + "'"
}()

// devAuthorize is the authorization endpoint (GET /dev/authorize): the
// persona page, or a redirect straight back for an EHR launch or an error
// the app must hear of.
func (s *Server) devAuthorize(c echo.Context) error {
	if s.DevAuth == nil {
		return cpis.E("api.devAuthorize", cpis.NotFound, "there is no development authorization server")
	}
	q := queryParams(c)
	for _, k := range []string{"response_type", "client_id", "redirect_uri", "scope", "state", "aud", "code_challenge", "code_challenge_method", "launch"} {
		if len(q[k]) > 1 { // RFC 6749 section 3.1
			return s.devAuthError(c, &auth.OAuthError{Code: "invalid_request", Description: k + " is given more than once"})
		}
	}
	pending, redirect, err := s.DevAuth.Authorize(auth.AuthorizeRequest{
		ResponseType: q.Get("response_type"), ClientID: q.Get("client_id"), RedirectURI: q.Get("redirect_uri"),
		Scope: q.Get("scope"), State: q.Get("state"), Aud: q.Get("aud"),
		CodeChallenge: q.Get("code_challenge"), CodeChallengeMethod: q.Get("code_challenge_method"), Launch: q.Get("launch"),
	})
	switch {
	case err != nil:
		return s.devAuthError(c, err)
	case redirect != nil:
		return devRedirect(c, redirect.URL)
	}
	return renderAuthorizePage(c, http.StatusOK, pending, "", "")
}

// devApprove is the authorize page's form (POST /dev/authorize): the
// person chose a persona. The form carries the pending request's id,
// which only the page shown for that request holds.
func (s *Server) devApprove(c echo.Context) error {
	if s.DevAuth == nil {
		return cpis.E("api.devApprove", cpis.NotFound, "there is no development authorization server")
	}
	if !formMedia(c.Request().Header.Get(echo.HeaderContentType)) {
		return s.devAuthError(c, &auth.OAuthError{Code: "invalid_request", Description: "send the authorize page's form"})
	}
	form, err := readForm(c)
	if err != nil {
		return s.devAuthError(c, &auth.OAuthError{Code: "invalid_request", Description: err.Error()})
	}
	id, patient := form.Get("request"), form.Get("patient")
	redirect, err := s.DevAuth.Approve(id, form.Get("persona"), patient)
	if cpis.KindOf(err) == cpis.InvalidNHSNumber {
		if pending, ok := s.DevAuth.Pending(id); ok {
			return renderAuthorizePage(c, http.StatusUnprocessableEntity, pending, patient,
				"The patient NHS number is not a valid NHS number: check its 10 digits, or leave it empty.")
		}
	}
	if err != nil {
		return s.devAuthError(c, err)
	}
	return devRedirect(c, redirect.URL)
}

// devLaunch acts as the EHR launching an app (GET /dev/launch). It signs
// the browser in to the app as a persona, so it answers only a navigation
// the developer made (see crossSiteRequest).
func (s *Server) devLaunch(c echo.Context) error {
	const op = "api.devLaunch"
	if s.DevAuth == nil {
		return cpis.E(op, cpis.NotFound, "there is no development authorization server")
	}
	if crossSiteRequest(c.Request()) {
		return renderDevPage(c, http.StatusForbidden, "dev-launch-refused.html", "", map[string]any{"CSS": template.CSS(devCSS)})
	}
	q := queryParams(c)
	for _, k := range []string{"persona", "patient", "app"} {
		if len(q[k]) > 1 {
			return cpis.E(op, cpis.InvalidValue, cpis.Expr(k), k+" is given more than once")
		}
	}
	to, err := s.DevAuth.Launch(q.Get("persona"), q.Get("patient"), q.Get("app"))
	if err != nil {
		return cpis.E(op, err)
	}
	return devRedirect(c, to)
}

// crossSiteRequest reports whether a browser says another site caused the
// request: a link, form, image or redirect from any page open in the
// developer's browser could otherwise sign that browser in to the viewer
// as any persona (login CSRF), record an access and send an ASN. Browsers
// send Sec-Fetch-Site: none for an address typed or a bookmark, and
// same-origin for this server's own pages; curl and Go clients send none
// of it, and are answered.
func crossSiteRequest(r *http.Request) bool {
	for _, site := range r.Header.Values("Sec-Fetch-Site") {
		if site != "none" && site != "same-origin" {
			return true
		}
	}
	return false
}

// devRedirect sends the user agent on; the answer is for this request only.
func devRedirect(c echo.Context, to string) error {
	h := c.Response().Header()
	h.Set(echo.HeaderCacheControl, "no-store")
	h.Set("Referrer-Policy", "no-referrer")
	return c.Redirect(http.StatusFound, to)
}

// devAuthError shows a refusal as a page (400): for a request whose client
// or redirect URI is not trusted, RFC 6749 section 4.1.2.1 forbids
// redirecting. Errors other than OAuth ones go to the error handler.
func (s *Server) devAuthError(c echo.Context, err error) error {
	oe, ok := auth.AsOAuthError(err)
	if !ok {
		return cpis.E("api.devAuthorize", err)
	}
	return renderDevPage(c, http.StatusBadRequest, "dev-authorize-error.html", "", map[string]any{
		"CSS": template.CSS(devCSS), "Code": oe.Code, "Description": oe.Description,
	})
}

// personaView is one persona's button on the authorize page.
type personaView struct {
	Name, DescID, Who, Description string
}

// renderAuthorizePage shows the persona page of a pending request;
// patient and problem are set when it is shown again after a bad NHS
// number. The personas are those auth lets a person sign in to an app as
// (health users today); any other kind it may allow is listed apart, so
// that no one mistakes it for a person's sign-in.
func renderAuthorizePage(c echo.Context, status int, p *auth.PendingAuthorization, patient, problem string) error {
	var people, systems []personaView
	for i, pr := range p.Personas {
		v := personaView{Name: pr.Name, DescID: "persona-" + strconv.Itoa(i), Description: pr.Description, Who: pr.DisplayName}
		if pr.Kind == cpis.HealthUser {
			v.Who = pr.DisplayName + ", " + pr.RoleName
			people = append(people, v)
		} else {
			systems = append(systems, v)
		}
	}
	return renderDevPage(c, status, "dev-authorize.html", p.RedirectOrigin, map[string]any{
		"CSS": template.CSS(devCSS), "ID": p.ID, "ClientID": p.ClientID, "ClientName": p.ClientName, "Scopes": strings.Join(p.Scopes, " "),
		"AskPatient": p.AskPatient, "Patient": patient, "Error": problem, "People": people, "Systems": systems,
	})
}

// renderDevPage writes a page with headers that keep it out of caches and
// frames and run no script. formTarget is the origin the page's form may
// end up at (its answer redirects to the app); browsers apply form-action
// to that redirect too.
func renderDevPage(c echo.Context, status int, name, formTarget string, data any) error {
	var b bytes.Buffer
	if err := devTemplates.ExecuteTemplate(&b, name, data); err != nil {
		return cpis.E("api.renderDevPage", err)
	}
	formAction := "'self'"
	if u, err := url.Parse(formTarget); err == nil && (u.Scheme == "http" || u.Scheme == "https") && u.Host != "" {
		formAction += " " + u.Scheme + "://" + u.Host
	}
	h := c.Response().Header()
	h.Set("Content-Security-Policy", "default-src 'none'; style-src "+devCSSHash+"; form-action "+formAction+
		"; frame-ancestors 'none'; base-uri 'none'")
	h.Set(echo.HeaderCacheControl, "no-store")
	h.Set("Referrer-Policy", "no-referrer")
	h.Set(echo.HeaderXContentTypeOptions, "nosniff")
	h.Set(echo.HeaderXFrameOptions, "DENY")
	return c.HTMLBlob(status, b.Bytes())
}

// devAuthToken answers the token requests of the development authorization
// server: the authorization_code grant and SMART Backend Services.
func (s *Server) devAuthToken(c echo.Context, form url.Values) error {
	g, err := s.DevAuth.Token(auth.TokenRequest{
		GrantType: form.Get("grant_type"), Code: form.Get("code"), RedirectURI: form.Get("redirect_uri"),
		CodeVerifier: form.Get("code_verifier"), ClientID: form.Get("client_id"), Scope: form.Get("scope"),
		ClientAssertionType: form.Get("client_assertion_type"), ClientAssertion: form.Get("client_assertion"),
	})
	if oe, ok := auth.AsOAuthError(err); ok {
		status := http.StatusBadRequest
		if oe.Code == "invalid_client" {
			status = http.StatusUnauthorized
		}
		return oauthError(c, status, oe.Code, oe.Description)
	}
	if err != nil {
		return cpis.E("api.devAuthToken", err)
	}
	body := tokenResponse(g.DevGrant)
	if g.Patient != "" {
		body["patient"] = g.Patient.String()
	}
	return writeTokenJSON(c, http.StatusOK, body)
}

// devAuthGrant reports whether a token request is for the development
// authorization server rather than the personas' quick start: a code, or a
// client authenticating with an assertion.
func (s *Server) devAuthGrant(form url.Values) bool {
	if s.DevAuth == nil {
		return false
	}
	return form.Get("grant_type") == "authorization_code" || form.Has("client_assertion") || form.Has("client_assertion_type")
}
