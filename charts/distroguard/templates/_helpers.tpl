{{/* The chart's name, or nameOverride. */}}
{{- define "distroguard.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/* Release-scoped name of every object (cluster-scoped ones too, so releases do not collide). */}}
{{- define "distroguard.fullname" -}}
{{- if .Values.fullnameOverride -}}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" -}}
{{- else if contains (include "distroguard.name" .) .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name (include "distroguard.name" .) | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{- define "distroguard.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
{{ include "distroguard.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: distroguard
{{- end -}}

{{- define "distroguard.selectorLabels" -}}
app.kubernetes.io/name: {{ include "distroguard.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/component: webhook
{{- end -}}

{{- define "distroguard.serviceAccountName" -}}
{{- default (include "distroguard.fullname" .) .Values.serviceAccount.name -}}
{{- end -}}

{{- define "distroguard.tlsSecretName" -}}
{{- default (printf "%s-tls" (include "distroguard.fullname" .)) .Values.certificates.secretName -}}
{{- end -}}

{{- define "distroguard.image" -}}
{{- if .Values.image.digest -}}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest -}}
{{- else -}}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) -}}
{{- end -}}
{{- end -}}

{{/*
The CA and serving certificate of `certificates.mode: helm`, as a dict (ca.crt, tls.crt, tls.key: PEM).
Each PEM ends in exactly one newline, so that generated and read-back values render alike.
Read back from the existing Secret when it holds all three (an upgrade keeps them); generated otherwise.
Computed once per render and memoised, so that the Secret and the webhook's caBundle always agree.
*/}}
{{- define "distroguard.generatedCerts" -}}
{{- if not (hasKey .Release "distroguardCerts") -}}
{{- $name := include "distroguard.tlsSecretName" . -}}
{{- $found := lookup "v1" "Secret" .Release.Namespace $name -}}
{{- $data := dict -}}
{{- if and $found $found.data -}}
{{- $data = $found.data -}}
{{- end -}}
{{- $certs := dict -}}
{{- if and (hasKey $data "ca.crt") (hasKey $data "tls.crt") (hasKey $data "tls.key") -}}
{{- $_ := set $certs "ca.crt" (index $data "ca.crt" | b64dec | trim | printf "%s\n") -}}
{{- $_ := set $certs "tls.crt" (index $data "tls.crt" | b64dec | trim | printf "%s\n") -}}
{{- $_ := set $certs "tls.key" (index $data "tls.key" | b64dec | trim | printf "%s\n") -}}
{{- else -}}
{{- $service := include "distroguard.fullname" . -}}
{{- $ns := .Release.Namespace -}}
{{- $days := int .Values.certificates.validityDays -}}
{{- $ca := genCA (printf "%s-ca" $service) $days -}}
{{- $dns := list $service (printf "%s.%s" $service $ns) (printf "%s.%s.svc" $service $ns) (printf "%s.%s.svc.cluster.local" $service $ns) -}}
{{- $cert := genSignedCert (printf "%s.%s.svc" $service $ns) nil $dns $days $ca -}}
{{- $_ := set $certs "ca.crt" ($ca.Cert | trim | printf "%s\n") -}}
{{- $_ := set $certs "tls.crt" ($cert.Cert | trim | printf "%s\n") -}}
{{- $_ := set $certs "tls.key" ($cert.Key | trim | printf "%s\n") -}}
{{- end -}}
{{- $_ := set .Release "distroguardCerts" $certs -}}
{{- end -}}
{{- toYaml (get .Release "distroguardCerts") -}}
{{- end -}}

{{/* The webhook configuration's caBundle (base64), empty with cert-manager (injected). */}}
{{- define "distroguard.caBundle" -}}
{{- if eq .Values.certificates.mode "helm" -}}
{{- index (include "distroguard.generatedCerts" . | fromYaml) "ca.crt" | b64enc -}}
{{- else if eq .Values.certificates.mode "provided" -}}
{{- .Values.certificates.caBundle -}}
{{- end -}}
{{- end -}}

{{/* Namespaces the API server never sends to distroguard. */}}
{{- define "distroguard.excludedNamespaces" -}}
{{- $names := concat (list "kube-system" .Release.Namespace) .Values.webhook.excludeNamespaces | uniq | sortAlpha -}}
{{- toJson $names -}}
{{- end -}}

{{- define "distroguard.auditName" -}}
{{- printf "%s-audit" (include "distroguard.fullname" .) | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "distroguard.auditSelectorLabels" -}}
app.kubernetes.io/name: {{ include "distroguard.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/component: audit
{{- end -}}

{{- define "distroguard.auditLabels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
{{ include "distroguard.auditSelectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: distroguard
{{- end -}}

{{/* The options that say which DistroPolicyExceptions are honoured: the webhook and the audit must agree. */}}
{{- define "distroguard.exceptionArgs" -}}
{{- if .Values.exceptions.adminNamespace }}
- --exception-admin-namespace={{ .Values.exceptions.adminNamespace }}
{{- else }}
- --exception-namespaces={{ join "," .Values.exceptions.namespaces }}
{{- end }}
- --exception-max-days={{ .Values.exceptions.maxDays }}
{{- end }}

{{/* "true" when the webhook serves the facts API (asked for, or needed by the Gatekeeper Provider); "" otherwise. */}}
{{- define "distroguard.factsEnabled" -}}
{{- if or .Values.factsApi.enabled .Values.gatekeeperProvider.enabled -}}true{{- end -}}
{{- end -}}

{{/* The Service port the facts API is reached on: its own, or the webhook's 443. */}}
{{- define "distroguard.factsServicePort" -}}
{{- .Values.factsApi.port | default 443 -}}
{{- end -}}

{{/* The webhook's options for the facts API (none when it is off). */}}
{{- define "distroguard.factsArgs" -}}
{{- if include "distroguard.factsEnabled" . }}
{{- if and .Values.factsApi.clientCA.secretName (not .Values.factsApi.port) }}
{{- fail "factsApi.clientCA needs factsApi.port: client certificates are asked for on a port of its own" }}
{{- end }}
{{- if and .Values.factsApi.port (eq (int .Values.factsApi.port) (int .Values.webhook.port)) }}
{{- fail "factsApi.port must differ from webhook.port (leave it null to share the webhook's)" }}
{{- end }}
- --facts-api
- --facts-max-keys={{ .Values.factsApi.maxKeys }}
{{- with .Values.factsApi.port }}
- --facts-port={{ . }}
{{- end }}
{{- if .Values.factsApi.clientCA.secretName }}
- --facts-client-ca=/etc/distroguard/facts-client-ca/ca.crt
{{- end }}
{{- with .Values.factsApi.budget }}
- --facts-budget={{ . }}
{{- end }}
{{- end }}
{{- end -}}

{{/*
HTTPS_PROXY, HTTP_PROXY and NO_PROXY for the distroguard containers (nothing when no proxy is set). NO_PROXY
always names the API server's address: the kubernetes client honours these variables too.
*/}}
{{- define "distroguard.proxyEnv" -}}
{{- $proxy := .Values.proxy | default dict -}}
{{- if or $proxy.httpsProxy $proxy.httpProxy $proxy.existingSecret }}
{{- range $name, $key := dict "HTTPS_PROXY" "httpsProxy" "HTTP_PROXY" "httpProxy" }}
{{- if $proxy.existingSecret }}
- name: {{ $name }}
  valueFrom:
    secretKeyRef:
      name: {{ $proxy.existingSecret }}
      key: {{ $name }}
      optional: true
{{- else if index $proxy $key }}
- name: {{ $name }}
  value: {{ index $proxy $key | quote }}
{{- end }}
{{- end }}
- name: NO_PROXY
  value: {{ concat ($proxy.noProxy | default list) (list "$(KUBERNETES_SERVICE_HOST)") | join "," | quote }}
{{- end }}
{{- end -}}
