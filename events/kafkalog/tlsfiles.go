package kafkalog

import (
	"bytes"
	"crypto/aes"
	"crypto/cipher"
	"crypto/des"
	"crypto/pbkdf2"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/sha512"
	"crypto/tls"
	"crypto/x509"
	"encoding/asn1"
	"encoding/pem"
	"errors"
	"fmt"
	"hash"
	"os"
	"time"
)

// loadKeyPair reads a client certificate and its key. The key may be
// encrypted with password, as Nebula 2.7's kafka_ssl_password allowed:
// PKCS#8 "ENCRYPTED PRIVATE KEY" (PBES2: PBKDF2 with AES-CBC, what
// `openssl genpkey -aes256` and `openssl pkcs8 -topk8` write) or the
// legacy OpenSSL "Proc-Type: 4,ENCRYPTED" form.
func loadKeyPair(certFile, keyFile, password string) (tls.Certificate, error) {
	certPEM, err := os.ReadFile(certFile)
	if err != nil {
		return tls.Certificate{}, err
	}
	keyPEM, err := os.ReadFile(keyFile)
	if err != nil {
		return tls.Certificate{}, err
	}
	block, _ := pem.Decode(keyPEM)
	if block == nil {
		return tls.Certificate{}, fmt.Errorf("%s: no PEM key found", keyFile)
	}
	encrypted := block.Type == "ENCRYPTED PRIVATE KEY" || x509.IsEncryptedPEMBlock(block) //nolint:staticcheck // legacy keys are what 2.7 users have
	switch {
	case encrypted && password == "":
		return tls.Certificate{}, fmt.Errorf("%s is encrypted: give its password (KAFKA_SSL_PASSWORD)", keyFile)
	case !encrypted && password != "":
		return tls.Certificate{}, fmt.Errorf("a key password was given but %s is not encrypted", keyFile)
	case encrypted:
		der, err := decryptKey(block, []byte(password))
		if err != nil {
			return tls.Certificate{}, fmt.Errorf("%s: %w", keyFile, err)
		}
		keyPEM = pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der})
	}
	return tls.X509KeyPair(certPEM, keyPEM)
}

var errKeyPassword = errors.New("cannot decrypt the key: wrong password, or a damaged key")

// decryptKey returns the PKCS#8 DER of an encrypted PEM key.
func decryptKey(block *pem.Block, password []byte) ([]byte, error) {
	if block.Type != "ENCRYPTED PRIVATE KEY" {
		der, err := x509.DecryptPEMBlock(block, password) //nolint:staticcheck // legacy format, no alternative in the standard library
		if err != nil {
			return nil, errKeyPassword
		}
		key, err := parseAnyKey(der)
		if err != nil {
			return nil, errKeyPassword
		}
		return x509.MarshalPKCS8PrivateKey(key)
	}
	var info struct {
		Algo struct {
			OID    asn1.ObjectIdentifier
			Params asn1.RawValue
		}
		Data []byte
	}
	if _, err := asn1.Unmarshal(block.Bytes, &info); err != nil {
		return nil, fmt.Errorf("encrypted key: %w", err)
	}
	if !info.Algo.OID.Equal(oidPBES2) {
		return nil, fmt.Errorf("encrypted key: scheme %v is not PBES2 (re-encrypt with `openssl pkcs8 -topk8 -v2 aes256`)", info.Algo.OID)
	}
	var params struct {
		KDF struct {
			OID    asn1.ObjectIdentifier
			Params asn1.RawValue
		}
		Enc struct {
			OID asn1.ObjectIdentifier
			IV  []byte
		}
	}
	if _, err := asn1.Unmarshal(info.Algo.Params.FullBytes, &params); err != nil {
		return nil, fmt.Errorf("encrypted key: PBES2 parameters: %w", err)
	}
	if !params.KDF.OID.Equal(oidPBKDF2) {
		return nil, fmt.Errorf("encrypted key: key derivation %v is not PBKDF2", params.KDF.OID)
	}
	var kdf struct {
		Salt   []byte
		Iter   int
		KeyLen int `asn1:"optional"`
		PRF    struct {
			OID asn1.ObjectIdentifier
		} `asn1:"optional"`
	}
	if _, err := asn1.Unmarshal(params.KDF.Params.FullBytes, &kdf); err != nil {
		return nil, fmt.Errorf("encrypted key: PBKDF2 parameters: %w", err)
	}
	if kdf.Iter < 1 || kdf.Iter > 10_000_000 {
		return nil, fmt.Errorf("encrypted key: %d PBKDF2 iterations", kdf.Iter)
	}
	prf := sha1.New
	switch {
	case len(kdf.PRF.OID) == 0 || kdf.PRF.OID.Equal(oidHMACSHA1):
	case kdf.PRF.OID.Equal(oidHMACSHA256):
		prf = sha256.New
	case kdf.PRF.OID.Equal(oidHMACSHA512):
		prf = sha512.New
	default:
		return nil, fmt.Errorf("encrypted key: PBKDF2 with %v is not supported (use HMAC-SHA256)", kdf.PRF.OID)
	}
	var keyLen int
	var newCipher func([]byte) (cipher.Block, error)
	switch {
	case params.Enc.OID.Equal(oidAES128CBC):
		keyLen, newCipher = 16, aes.NewCipher
	case params.Enc.OID.Equal(oidAES192CBC):
		keyLen, newCipher = 24, aes.NewCipher
	case params.Enc.OID.Equal(oidAES256CBC):
		keyLen, newCipher = 32, aes.NewCipher
	case params.Enc.OID.Equal(oidDESEDE3CBC):
		keyLen, newCipher = 24, des.NewTripleDESCipher
	default:
		return nil, fmt.Errorf("encrypted key: cipher %v is not supported (use AES-CBC)", params.Enc.OID)
	}
	key, err := pbkdf2.Key(func() hash.Hash { return prf() }, string(password), kdf.Salt, kdf.Iter, keyLen)
	if err != nil {
		return nil, fmt.Errorf("encrypted key: %w", err)
	}
	c, err := newCipher(key)
	if err != nil {
		return nil, fmt.Errorf("encrypted key: %w", err)
	}
	bs := c.BlockSize()
	if len(params.Enc.IV) != bs || len(info.Data) == 0 || len(info.Data)%bs != 0 {
		return nil, errors.New("encrypted key: bad IV or data length")
	}
	plain := make([]byte, len(info.Data))
	cipher.NewCBCDecrypter(c, params.Enc.IV).CryptBlocks(plain, info.Data)
	pad := int(plain[len(plain)-1])
	if pad < 1 || pad > bs || !bytes.Equal(plain[len(plain)-pad:], bytes.Repeat([]byte{byte(pad)}, pad)) {
		return nil, errKeyPassword
	}
	der := plain[:len(plain)-pad]
	if _, err := x509.ParsePKCS8PrivateKey(der); err != nil {
		return nil, errKeyPassword
	}
	return der, nil
}

func parseAnyKey(der []byte) (any, error) {
	if k, err := x509.ParsePKCS8PrivateKey(der); err == nil {
		return k, nil
	}
	if k, err := x509.ParsePKCS1PrivateKey(der); err == nil {
		return k, nil
	}
	return x509.ParseECPrivateKey(der)
}

var (
	oidPBES2         = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 5, 13}
	oidPBKDF2        = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 5, 12}
	oidHMACSHA1      = asn1.ObjectIdentifier{1, 2, 840, 113549, 2, 7}
	oidHMACSHA256    = asn1.ObjectIdentifier{1, 2, 840, 113549, 2, 9}
	oidHMACSHA512    = asn1.ObjectIdentifier{1, 2, 840, 113549, 2, 11}
	oidAES128CBC     = asn1.ObjectIdentifier{2, 16, 840, 1, 101, 3, 4, 1, 2}
	oidAES192CBC     = asn1.ObjectIdentifier{2, 16, 840, 1, 101, 3, 4, 1, 22}
	oidAES256CBC     = asn1.ObjectIdentifier{2, 16, 840, 1, 101, 3, 4, 1, 42}
	oidDESEDE3CBC    = asn1.ObjectIdentifier{1, 2, 840, 113549, 3, 7}
	errNoCRLOfIssuer = errors.New("no CRL of the broker certificate's issuer in the CRL file")
)

// loadCRLs reads every CRL (PEM or DER) of a file, as Nebula 2.7's
// kafka_ssl_crlfile.
func loadCRLs(path string) ([]*x509.RevocationList, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var crls []*x509.RevocationList
	if !bytes.Contains(b, []byte("-----BEGIN")) {
		crl, err := x509.ParseRevocationList(b)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", path, err)
		}
		return append(crls, crl), nil
	}
	for {
		var block *pem.Block
		block, b = pem.Decode(b)
		if block == nil {
			break
		}
		if block.Type != "X509 CRL" {
			continue
		}
		crl, err := x509.ParseRevocationList(block.Bytes)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", path, err)
		}
		crls = append(crls, crl)
	}
	if len(crls) == 0 {
		return nil, fmt.Errorf("%s: no X509 CRL found", path)
	}
	return crls, nil
}

// revokedError is a broker certificate refused by the CRL check.
type revokedError struct{ msg string }

func (e revokedError) Error() string { return e.msg }

// checkRevocation fails a connection whose broker certificate is revoked
// by one of crls. As OpenSSL's CRL_CHECK (the leaf only) that 2.7 used, a
// CRL of the leaf's issuer must be present, signed by it and current.
func checkRevocation(crls []*x509.RevocationList, now func() time.Time) func(tls.ConnectionState) error {
	return func(cs tls.ConnectionState) error {
		if len(cs.VerifiedChains) == 0 || len(cs.VerifiedChains[0]) < 2 {
			return revokedError{"kafka TLS: no verified chain to check the CRL against"}
		}
		leaf, issuer := cs.VerifiedChains[0][0], cs.VerifiedChains[0][1]
		for _, crl := range crls {
			if crl.CheckSignatureFrom(issuer) != nil {
				continue
			}
			if !crl.NextUpdate.IsZero() && now().After(crl.NextUpdate) {
				return revokedError{fmt.Sprintf("kafka TLS: the CRL of %s expired at %s", issuer.Subject, crl.NextUpdate.Format(time.RFC3339))}
			}
			for _, r := range crl.RevokedCertificateEntries {
				if r.SerialNumber.Cmp(leaf.SerialNumber) == 0 {
					return revokedError{fmt.Sprintf("kafka TLS: the broker certificate %s (serial %s) is revoked", leaf.Subject, leaf.SerialNumber)}
				}
			}
			return nil
		}
		return revokedError{fmt.Sprintf("kafka TLS: %v (%s)", errNoCRLOfIssuer, issuer.Subject)}
	}
}
