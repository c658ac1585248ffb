package projections

import (
	"slices"

	"github.com/nebula-orchestrator/nebula-go/events"
)

// Users and user groups: who may do what.

func (f *folder) createUser(name string, p events.UserCreatedV) error {
	k := key(prefixUser, name)
	if _, found, err := f.kv.Get(k); err != nil || found {
		return existsOr(err, "user", name)
	}
	if err := f.claimToken(name, p.TokenSHA256); err != nil {
		return err
	}
	return putDoc(f.kv, k, User{Name: name, Version: f.off, PasswordHash: p.PasswordHash, TokenSHA256: p.TokenSHA256})
}

func (f *folder) changeUser(name string, password, token *string) error {
	k := key(prefixUser, name)
	u, found, err := getDoc[User](f.kv, k)
	if err != nil || !found {
		return notFoundOr(err, "user", name)
	}
	if password != nil {
		u.PasswordHash = *password
	}
	if token != nil && *token != u.TokenSHA256 {
		if err := f.claimToken(name, *token); err != nil {
			return err
		}
		if err := f.kv.Delete(key(prefixToken, u.TokenSHA256)); err != nil {
			return err
		}
		u.TokenSHA256 = *token
	}
	u.Version = f.off
	return putDoc(f.kv, k, u)
}

// claimToken indexes a token hash for user, refusing one another user has.
func (f *folder) claimToken(user, sha string) error {
	tk := key(prefixToken, sha)
	owner, found, err := f.kv.Get(tk)
	if err != nil {
		return err
	}
	if found && string(owner) != user {
		return reject(ReasonTokenInUse, "the token is already another user's")
	}
	return f.kv.Set(tk, []byte(user))
}

// deleteUser deletes the user, its token and its group memberships (in
// Nebula 2.7 a re-created user inherited the old one's permissions).
func (f *folder) deleteUser(name string) error {
	k := key(prefixUser, name)
	u, found, err := getDoc[User](f.kv, k)
	if err != nil || !found {
		return notFoundOr(err, "user", name)
	}
	groups, err := indexed(f.kv, f.memo.listMemo(), prefixIdxGroupUser, name)
	if err != nil {
		return err
	}
	for _, g := range groups {
		gk := key(prefixUserGroup, g)
		ug, found, err := getDoc[UserGroup](f.kv, gk)
		if err != nil || !found {
			return notFoundOr(err, "user group", g)
		}
		ug.GroupMembers = slices.DeleteFunc(ug.GroupMembers, func(m string) bool { return m == name })
		ug.Version = f.off
		if err := putDoc(f.kv, gk, ug); err != nil {
			return err
		}
	}
	if err := f.kv.Delete(key(prefixIdxGroupUser, name)); err != nil {
		return err
	}
	if err := f.kv.Delete(key(prefixToken, u.TokenSHA256)); err != nil {
		return err
	}
	return f.kv.Delete(k)
}

func (f *folder) createUserGroup(name string, spec events.UserGroupSpec) error {
	k := key(prefixUserGroup, name)
	if _, found, err := f.kv.Get(k); err != nil || found {
		return existsOr(err, "user group", name)
	}
	if err := f.checkUsers(spec.GroupMembers); err != nil {
		return err
	}
	if err := f.reindex(prefixIdxGroupUser, name, nil, spec.GroupMembers); err != nil {
		return err
	}
	return putDoc(f.kv, k, UserGroup{Name: name, Version: f.off, UserGroupSpec: spec})
}

func (f *folder) changeUserGroup(name string, patch events.UserGroupPatch) error {
	k := key(prefixUserGroup, name)
	ug, found, err := getDoc[UserGroup](f.kv, k)
	if err != nil || !found {
		return notFoundOr(err, "user group", name)
	}
	old := ug.GroupMembers
	ug.UserGroupSpec = patch.Apply(ug.UserGroupSpec)
	if err := validSpec(ug.UserGroupSpec.Validate()); err != nil {
		return err
	}
	if err := f.checkUsers(ug.GroupMembers); err != nil {
		return err
	}
	if err := f.reindex(prefixIdxGroupUser, name, old, ug.GroupMembers); err != nil {
		return err
	}
	ug.Version = f.off
	return putDoc(f.kv, k, ug)
}

func (f *folder) deleteUserGroup(name string) error {
	k := key(prefixUserGroup, name)
	ug, found, err := getDoc[UserGroup](f.kv, k)
	if err != nil || !found {
		return notFoundOr(err, "user group", name)
	}
	if err := f.reindex(prefixIdxGroupUser, name, ug.GroupMembers, nil); err != nil {
		return err
	}
	return f.kv.Delete(k)
}

func (f *folder) checkUsers(names []string) error {
	for _, u := range names {
		if _, found, err := f.kv.Get(key(prefixUser, u)); err != nil || !found {
			return missingOr(err, events.KindUser, u)
		}
	}
	return nil
}
