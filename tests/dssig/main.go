// Command dssig checks and makes Delivery Station layer signatures exactly as
// ds-contract §13 states DS's installer computes them, with the Go standard library only:
// RSA PKCS#1 v1.5 over SHA-256 where the hash is the layer's own sha256 digest, base64 in the
// `delivery-station.io/signature` annotation, and the key id = hex SHA-256 of the PKIX DER of
// the public key in `delivery-station.io/key.id`.
//
// It talks to a plain-HTTP registry on loopback (the tests' distribution registry):
//
//	dssig verify -registry 127.0.0.1:5000 -repo demo/tool -ref 1.0 -pub key.pub [-platform linux/amd64]
//	dssig sign   -registry 127.0.0.1:5000 -repo demo/tool -ref 1.0 -key key.pem [-tag 1.0-signed]
//
// verify selects the platform's manifest from the index (by `platform`, else the os /
// architecture annotations), checks its first layer as DS does, then every other layer, and
// prints a JSON report; it exits 1 when a check fails. sign re-signs every layer of every
// platform manifest, pushes the new manifests and an index pointing at them under -tag.
package main

import (
	"bytes"
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"time"
)

const (
	signatureAnnotation = "delivery-station.io/signature"
	keyIDAnnotation     = "delivery-station.io/key.id"
	ociIndex            = "application/vnd.oci.image.index.v1+json"
	ociManifest         = "application/vnd.oci.image.manifest.v1+json"
)

var client = &http.Client{Timeout: 30 * time.Second}

type layerReport struct {
	Digest   string `json:"digest"`
	KeyID    string `json:"key_id"`
	Verified bool   `json:"verified"`
	Error    string `json:"error,omitempty"`
}

type report struct {
	Platform string        `json:"platform"`
	Manifest string        `json:"manifest"`
	KeyID    string        `json:"trusted_key_id"`
	Layers   []layerReport `json:"layers"`
	OK       bool          `json:"ok"`
}

func main() {
	if len(os.Args) < 2 {
		fail(errors.New("usage: dssig verify|sign [flags]"))
	}
	flags := flag.NewFlagSet(os.Args[1], flag.ExitOnError)
	registry := flags.String("registry", "", "registry host:port (plain HTTP)")
	repo := flags.String("repo", "", "repository")
	ref := flags.String("ref", "", "tag or digest of the index")
	pub := flags.String("pub", "", "PEM PUBLIC KEY (verify)")
	key := flags.String("key", "", "PEM RSA PRIVATE KEY (sign)")
	platform := flags.String("platform", "linux/amd64", "os/arch to select (verify)")
	tag := flags.String("tag", "", "tag for the re-signed index (sign; default -ref)")
	_ = flags.Parse(os.Args[2:])
	r := &reg{base: "http://" + *registry + "/v2/" + *repo}
	switch os.Args[1] {
	case "verify":
		rep, err := verify(r, *ref, *pub, *platform)
		out, _ := json.Marshal(rep)
		fmt.Println(string(out))
		if err != nil {
			fmt.Fprintln(os.Stderr, "dssig:", err)
			os.Exit(1)
		}
	case "sign":
		if *tag == "" {
			*tag = *ref
		}
		digest, err := sign(r, *ref, *key, *tag)
		if err != nil {
			fail(err)
		}
		fmt.Println(digest)
	default:
		fail(fmt.Errorf("unknown command %q", os.Args[1]))
	}
}

func fail(err error) {
	fmt.Fprintln(os.Stderr, "dssig:", err)
	os.Exit(2)
}

type descriptor struct {
	MediaType    string `json:"mediaType"`
	Digest       string `json:"digest"`
	Size         int64  `json:"size"`
	ArtifactType string `json:"artifactType,omitempty"`
	Platform     *struct {
		OS           string `json:"os"`
		Architecture string `json:"architecture"`
	} `json:"platform,omitempty"`
	Annotations map[string]string `json:"annotations,omitempty"`
}

// keyID is DS's key id: lower-case hex SHA-256 of the PKIX DER encoding.
func keyID(pub *rsa.PublicKey) (string, error) {
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		return "", err
	}
	sum := sha256.Sum256(der)
	return hex.EncodeToString(sum[:]), nil
}

// digestBytes is the 32-byte hash DS hands to the verifier: the hex of a sha256 digest.
func digestBytes(digest string) ([]byte, error) {
	hexPart, ok := strings.CutPrefix(digest, "sha256:")
	if !ok {
		return nil, fmt.Errorf("unsupported digest algorithm in %s", digest)
	}
	b, err := hex.DecodeString(hexPart)
	if err != nil || len(b) != sha256.Size {
		return nil, fmt.Errorf("malformed digest %s", digest)
	}
	return b, nil
}

func verify(r *reg, ref, pubPath, platform string) (report, error) {
	rep := report{Platform: platform}
	text, err := os.ReadFile(pubPath)
	if err != nil {
		return rep, err
	}
	block, _ := pem.Decode(text)
	if block == nil || block.Type != "PUBLIC KEY" {
		return rep, errors.New("the public key file holds no PEM PUBLIC KEY block")
	}
	parsed, err := x509.ParsePKIXPublicKey(block.Bytes)
	if err != nil {
		return rep, err
	}
	pub, ok := parsed.(*rsa.PublicKey)
	if !ok {
		return rep, errors.New("the public key is not RSA")
	}
	trusted, err := keyID(pub)
	if err != nil {
		return rep, err
	}
	rep.KeyID = trusted
	var index struct {
		Manifests []descriptor `json:"manifests"`
	}
	if err := r.getJSON("manifests/"+ref, ociIndex, &index); err != nil {
		return rep, err
	}
	osName, arch, _ := strings.Cut(platform, "/")
	var selected *descriptor
	for i, d := range index.Manifests {
		match := d.Platform != nil && d.Platform.OS == osName && d.Platform.Architecture == arch
		match = match || (d.Annotations["os"] == osName && d.Annotations["architecture"] == arch)
		if match {
			selected = &index.Manifests[i]
			break
		}
	}
	if selected == nil {
		return rep, fmt.Errorf("no manifest for %s", platform)
	}
	rep.Manifest = selected.Digest
	var manifest struct {
		Layers []descriptor `json:"layers"`
	}
	if err := r.getJSON("manifests/"+selected.Digest, ociManifest, &manifest); err != nil {
		return rep, err
	}
	if len(manifest.Layers) == 0 {
		return rep, errors.New("manifest has no layers")
	}
	var firstErr error
	for _, layer := range manifest.Layers {
		lr := layerReport{Digest: layer.Digest, KeyID: layer.Annotations[keyIDAnnotation]}
		if err := verifyLayer(layer, pub, trusted); err != nil {
			lr.Error = err.Error()
			if firstErr == nil {
				firstErr = fmt.Errorf("layer %s: %w", layer.Digest, err)
			}
		} else {
			lr.Verified = true
		}
		rep.Layers = append(rep.Layers, lr)
	}
	rep.OK = firstErr == nil
	return rep, firstErr
}

func verifyLayer(layer descriptor, pub *rsa.PublicKey, trusted string) error {
	sigText, ok := layer.Annotations[signatureAnnotation]
	if !ok {
		return errors.New("missing signature annotations on layer (strict mode)")
	}
	if id := layer.Annotations[keyIDAnnotation]; id != "" && id != trusted {
		return fmt.Errorf("key ID %s not found in trusted keys", id)
	}
	sig, err := base64.StdEncoding.DecodeString(sigText)
	if err != nil {
		return fmt.Errorf("invalid signature encoding: %w", err)
	}
	hashed, err := digestBytes(layer.Digest)
	if err != nil {
		return err
	}
	return rsa.VerifyPKCS1v15(pub, crypto.SHA256, hashed, sig)
}

func sign(r *reg, ref, keyPath, tag string) (string, error) {
	text, err := os.ReadFile(keyPath)
	if err != nil {
		return "", err
	}
	block, _ := pem.Decode(text)
	if block == nil || block.Type != "RSA PRIVATE KEY" {
		return "", errors.New("the key file holds no PEM RSA PRIVATE KEY block")
	}
	key, err := x509.ParsePKCS1PrivateKey(block.Bytes)
	if err != nil {
		return "", err
	}
	id, err := keyID(&key.PublicKey)
	if err != nil {
		return "", err
	}
	var index map[string]any
	if err := r.getJSON("manifests/"+ref, ociIndex, &index); err != nil {
		return "", err
	}
	children, _ := index["manifests"].([]any)
	for _, child := range children {
		entry, _ := child.(map[string]any)
		digest, _ := entry["digest"].(string)
		var manifest map[string]any
		if err := r.getJSON("manifests/"+digest, ociManifest, &manifest); err != nil {
			return "", err
		}
		layers, _ := manifest["layers"].([]any)
		for _, l := range layers {
			layer, _ := l.(map[string]any)
			ld, _ := layer["digest"].(string)
			hashed, err := digestBytes(ld)
			if err != nil {
				return "", err
			}
			sig, err := rsa.SignPKCS1v15(rand.Reader, key, crypto.SHA256, hashed)
			if err != nil {
				return "", err
			}
			annotations, _ := layer["annotations"].(map[string]any)
			if annotations == nil {
				annotations = map[string]any{}
			}
			annotations[signatureAnnotation] = base64.StdEncoding.EncodeToString(sig)
			annotations[keyIDAnnotation] = id
			layer["annotations"] = annotations
		}
		body, _ := json.Marshal(manifest)
		newDigest, err := r.put("manifests/"+digestOf(body), ociManifest, body)
		if err != nil {
			return "", err
		}
		entry["digest"] = newDigest
		entry["size"] = len(body)
	}
	body, _ := json.Marshal(index)
	return r.put("manifests/"+tag, ociIndex, body)
}

func digestOf(body []byte) string {
	sum := sha256.Sum256(body)
	return "sha256:" + hex.EncodeToString(sum[:])
}

type reg struct{ base string }

func (r *reg) getJSON(path, accept string, out any) error {
	req, err := http.NewRequest(http.MethodGet, r.base+"/"+path, nil)
	if err != nil {
		return err
	}
	req.Header.Set("Accept", accept)
	resp, err := client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 4<<20))
	if err != nil {
		return err
	}
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET %s: HTTP %d: %s", path, resp.StatusCode, body)
	}
	return json.Unmarshal(body, out)
}

func (r *reg) put(path, mediaType string, body []byte) (string, error) {
	req, err := http.NewRequest(http.MethodPut, r.base+"/"+path, bytes.NewReader(body))
	if err != nil {
		return "", err
	}
	req.Header.Set("Content-Type", mediaType)
	resp, err := client.Do(req)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusCreated {
		msg, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
		return "", fmt.Errorf("PUT %s: HTTP %d: %s", path, resp.StatusCode, msg)
	}
	return digestOf(body), nil
}
