package commands

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"strings"

	"golang.org/x/crypto/bcrypt"

	"github.com/nebula-orchestrator/nebula-go/events"
	"github.com/nebula-orchestrator/nebula-go/projections"
)

// Secrets. Passwords are stored as bcrypt hashes; tokens as their SHA-256,
// so that a Bearer token is found with one lookup (2.7 bcrypt-checked the
// token against every user on every request). A token is 32 random bytes:
// a hash of it cannot be brute-forced, which is what bcrypt guards
// passwords against.
const (
	DefaultBcryptCost = 12
	minSecretLen      = 8
	maxSecretLen      = 72 // bcrypt's limit
	generatedBytes    = 32
)

// TokenHash is the SHA-256 (hex) a token is stored and looked up by.
func TokenHash(token string) string {
	sum := sha256.Sum256([]byte(token))
	return hex.EncodeToString(sum[:])
}

// NewSecret returns a random URL-safe secret (as Python's
// secrets.token_urlsafe(), which 2.7 used).
func NewSecret() string {
	b := make([]byte, generatedBytes)
	_, _ = rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)
}

func checkSecret(field, v string) error {
	if len(v) < minSecretLen || len(v) > maxSecretLen {
		return invalid(events.KindUser, &events.FieldError{Field: field, Err: fmt.Errorf("must have %d to %d characters", minSecretLen, maxSecretLen)})
	}
	return nil
}

// unhashed stands in for a bcrypt hash in the dry run that refuses a user
// command before its password is hashed (bcrypt takes a quarter of a
// second, a lookup in the projection microseconds). The fold decides
// nothing from a hash's value, only from its form, which this has.
var unhashed = "$2a$12$" + strings.Repeat(".", 53)

func (s *Service) hashPassword(p string) (string, error) {
	h, err := bcrypt.GenerateFromPassword([]byte(p), s.BcryptCost)
	return string(h), err
}

// Secrets are a user's password and token as a request gives them; nil
// means not given.
type Secrets struct {
	Password, Token *string
}

// CreatedUser is a new user and, when this call generated it, its token in
// clear: the only time it is shown.
type CreatedUser struct {
	projections.User
	Token string
}

// CreateUser creates a user. A missing token is generated and returned; a
// missing password is a random one nobody knows (Bearer only).
func (s *Service) CreateUser(ctx context.Context, m Meta, name string, sec Secrets) (CreatedUser, error) {
	var out CreatedUser
	password, token := NewSecret(), ""
	if sec.Password != nil {
		if err := checkSecret("password", *sec.Password); err != nil {
			return out, err
		}
		password = *sec.Password
	}
	if sec.Token != nil {
		if err := checkSecret("token", *sec.Token); err != nil {
			return out, err
		}
		token = *sec.Token
	} else {
		token = NewSecret()
		out.Token = token
	}
	if err := s.decideBeforeHashing(ctx, m, name, events.UserCreatedV{PasswordHash: unhashed, TokenSHA256: TokenHash(token)}); err != nil {
		return out, err
	}
	hash, err := s.hashPassword(password)
	if err != nil {
		return out, err
	}
	u, err := run(ctx, s, m, events.KindUser, name, events.UserCreatedV{PasswordHash: hash, TokenSHA256: TokenHash(token)}, getUser)
	out.User = u
	if err != nil {
		out.Token = ""
	}
	return out, err
}

// UpdateUser changes a user's password and/or token.
func (s *Service) UpdateUser(ctx context.Context, m Meta, name string, sec Secrets) (projections.User, error) {
	var p events.UserUpdatedV
	if sec.Password == nil && sec.Token == nil {
		return projections.User{}, &Error{Code: CodeInvalid, Kind: events.KindUser, Detail: "give a password or a token"}
	}
	if sec.Password != nil {
		if err := checkSecret("password", *sec.Password); err != nil {
			return projections.User{}, err
		}
	}
	if sec.Token != nil {
		if err := checkSecret("token", *sec.Token); err != nil {
			return projections.User{}, err
		}
		h := TokenHash(*sec.Token)
		p.TokenSHA256 = &h
	}
	if sec.Password != nil {
		dry := p
		dry.PasswordHash = new(unhashed)
		if err := s.decideBeforeHashing(ctx, m, name, dry); err != nil {
			return projections.User{}, err
		}
		h, err := s.hashPassword(*sec.Password)
		if err != nil {
			return projections.User{}, err
		}
		p.PasswordHash = &h
	}
	return run(ctx, s, m, events.KindUser, name, p, getUser)
}

// RefreshToken gives a user a new random token and returns it in clear.
func (s *Service) RefreshToken(ctx context.Context, m Meta, name string) (string, error) {
	token := NewSecret()
	_, err := run(ctx, s, m, events.KindUser, name, events.UserTokenRefreshedV{TokenSHA256: TokenHash(token)}, getUser)
	if err != nil {
		return "", err
	}
	return token, nil
}

// DeleteUser deletes a user and its group memberships.
func (s *Service) DeleteUser(ctx context.Context, m Meta, name string) error {
	_, err := run[projections.User](ctx, s, m, events.KindUser, name, events.UserDeletedV{}, nil)
	return err
}

// decideBeforeHashing refuses a user command the fold would reject
// (a name taken or missing, a token in use) before its password is hashed;
// p carries the unhashed placeholder.
func (s *Service) decideBeforeHashing(ctx context.Context, m Meta, name string, p events.Payload) error {
	if m.IdempotencyKey != "" {
		return nil // a retry is answered by run with the first request's answer
	}
	env, err := newEnvelope(events.KindUser, name, p)
	if err != nil {
		return err
	}
	return s.decide(ctx, s.stamp(m, env), nil)
}

// CreateUserGroup creates a user group of existing users.
func (s *Service) CreateUserGroup(ctx context.Context, m Meta, name string, spec events.UserGroupSpec) (projections.UserGroup, error) {
	return run(ctx, s, m, events.KindUserGroup, name, events.UserGroupCreatedV{Spec: spec}, getUserGroup)
}

// UpdateUserGroup changes the fields the patch names.
func (s *Service) UpdateUserGroup(ctx context.Context, m Meta, name string, patch events.UserGroupPatch) (projections.UserGroup, error) {
	return run(ctx, s, m, events.KindUserGroup, name, events.UserGroupUpdatedV{Patch: patch}, getUserGroup)
}

// DeleteUserGroup deletes a user group.
func (s *Service) DeleteUserGroup(ctx context.Context, m Meta, name string) error {
	_, err := run[projections.UserGroup](ctx, s, m, events.KindUserGroup, name, events.UserGroupDeletedV{}, nil)
	return err
}

func getUser(r projections.Reader, n string) (projections.User, bool, error) { return r.User(n) }
func getUserGroup(r projections.Reader, n string) (projections.UserGroup, bool, error) {
	return r.UserGroup(n)
}
