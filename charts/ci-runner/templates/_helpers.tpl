{{/* The CICD namespace: runners, their state and the build Jobs. */}}
{{- define "ci-runner.cicdNamespace" -}}
{{- default .Release.Namespace .Values.runner.cicdNamespace -}}
{{- end -}}

{{/* Name of one app's objects (CronJob, ServiceAccount, Roles): <release>-<app>, max 52 chars
     (a CronJob name leaves 11 characters for its Jobs' suffix). Call with (dict "root" $ "app" $app). */}}
{{- define "ci-runner.appName" -}}
{{- printf "%s-%s" .root.Release.Name .app.name | trunc 52 | trimSuffix "-" -}}
{{- end -}}

{{/* The ServiceAccount in an app's deploy namespace that its helm acts as (DEPLOYER):
     <release>-<app>-deployer. Call with (dict "root" $ "app" $app). */}}
{{- define "ci-runner.deployer" -}}
{{- printf "%s-deployer" (include "ci-runner.appName" .) -}}
{{- end -}}

{{/* The helm release an app deploys: apps[].release, else the app's name. */}}
{{- define "ci-runner.appRelease" -}}
{{- default .name .release -}}
{{- end -}}

{{/* The Secret where an app's runner keeps the GitHub App's installation token for the build pod's init container:
     ci-runner-<release>-git (Settings.token_secret_name). Call with the app. */}}
{{- define "ci-runner.tokenCopy" -}}
{{- printf "ci-runner-%s-git" (include "ci-runner.appRelease" .) -}}
{{- end -}}

{{- define "ci-runner.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/* Labels of every object; add app.kubernetes.io/component per object. */}}
{{- define "ci-runner.labels" -}}
helm.sh/chart: {{ include "ci-runner.chart" . }}
app.kubernetes.io/name: {{ .Chart.Name }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/part-of: ci-runner
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end -}}

{{/* One chart-side setting for an app (timeZone, activeDeadlineSeconds, tmpSizeLimit: values.yaml
     holds their defaults): apps[].runner.<key> when given, else runner.<key>.
     Call with (dict "root" $ "app" $app "key" "timeZone"). hasKey keeps false and 0 overrides. */}}
{{- define "ci-runner.setting" -}}
{{- $own := .app.runner | default dict -}}
{{- if hasKey $own .key -}}
{{- include "ci-runner.plain" (index $own .key) -}}
{{- else -}}
{{- include "ci-runner.plain" (index .root.Values.runner .key) -}}
{{- end -}}
{{- end -}}

{{/* A value as text: null as nothing, a whole number as one (helm reads 2000000 from a values
     file as a float, which prints as 2e+06 and reads back as 2 or 0), a list comma-joined
     (BUILD_ARGS, WATCH_PATHS, REQUIRE_CHECKS), a map as JSON (BUILD_POD; empty: nothing). */}}
{{- define "ci-runner.plain" -}}
{{- if kindIs "invalid" . -}}
{{- else if kindIs "map" . -}}
{{- if . -}}{{- toJson . -}}{{- end -}}
{{- else if kindIs "slice" . -}}
{{- join "," . -}}
{{- else if and (kindIs "float64" .) (eq . (floor .)) -}}
{{- int64 . -}}
{{- else -}}
{{- . -}}
{{- end -}}
{{- end -}}

{{/* The runner's settings the chart exposes: values key -> the runner's environment variable
     (a row of job/ci_runner/config/settings.py). The runner owns their defaults: the chart renders one
     only when the user set it (see ci-runner.userSetting). Exposing one more setting is one line
     here plus its entry in values.schema.json (under runner and apps[].runner, or apps[]);
     tests/ship/test_ship_settings.py checks every name against the settings table. */}}
{{- define "ci-runner.settingEnv" -}}
branch: BRANCH
dockerfile: DOCKERFILE
buildContext: BUILD_CONTEXT
imageRepositoryKey: IMAGE_REPOSITORY_KEY
imageTagKey: IMAGE_TAG_KEY
kanikoImage: KANIKO_IMAGE
maxRetries: MAX_RETRIES
buildTimeout: BUILD_TIMEOUT
buildStartGrace: BUILD_START_GRACE
tarballTimeout: TARBALL_TIMEOUT
helmTimeout: HELM_TIMEOUT
helmForceConflicts: HELM_FORCE_CONFLICTS
logFormat: LOG_FORMAT
verifySsl: VERIFY_SSL
githubApiUrl: GITHUB_API_URL
buildCache: BUILD_CACHE
cacheRepo: CACHE_REPO
buildCacheTtl: BUILD_CACHE_TTL
buildArgs: BUILD_ARGS
kanikoArgs: KANIKO_ARGS
build: BUILD_POD
registryInsecure: REGISTRY_INSECURE
imageDigestKey: IMAGE_DIGEST_KEY
deployByDigest: DEPLOY_BY_DIGEST
watchPaths: WATCH_PATHS
requireChecks: REQUIRE_CHECKS
{{- end -}}

{{/* What the user set for one runner setting of an app, as its environment value: apps[].<key>,
     else apps[].runner.<key>, else runner.<key> (the schema says which of these a key may use).
     Renders nothing when none is set (or it is null or ""): the runner's default applies. false
     and 0 are kept.
     Call with (dict "root" $ "app" $app "key" "maxRetries"). */}}
{{- define "ci-runner.userSetting" -}}
{{- $own := .app.runner | default dict -}}
{{- $value := "" -}}
{{- if hasKey .app .key -}}
{{- $value = index .app .key -}}
{{- else if hasKey $own .key -}}
{{- $value = index $own .key -}}
{{- else if hasKey .root.Values.runner .key -}}
{{- $value = index .root.Values.runner .key -}}
{{- end -}}
{{- include "ci-runner.plain" $value -}}
{{- end -}}

{{/* The runner image reference: repository@digest, else repository:tag (tag defaults to appVersion). */}}
{{- define "ci-runner.image" -}}
{{- $image := .Values.runner.image -}}
{{- if $image.digest -}}
{{- printf "%s@%s" $image.repository $image.digest -}}
{{- else -}}
{{- printf "%s:%s" $image.repository (default .Chart.AppVersion $image.tag) -}}
{{- end -}}
{{- end -}}

{{/* Fails with a clear message when two apps would share a name or a release (and so a state
     ConfigMap and Lease). Renders nothing. */}}
{{- define "ci-runner.checkApps" -}}
{{- $names := dict -}}
{{- $releases := dict -}}
{{- range $i, $app := .Values.apps -}}
{{- $name := include "ci-runner.appName" (dict "root" $ "app" $app) -}}
{{- if hasKey $names $name -}}
{{- fail (printf "apps[%d] (%s): another app already uses the object name %q; give it a different name" $i $app.name $name) -}}
{{- end -}}
{{- $_ := set $names $name true -}}
{{- $release := include "ci-runner.appRelease" $app -}}
{{- if hasKey $releases $release -}}
{{- fail (printf "apps[%d] (%s): release %q is used by another app; each app needs its own release (its state ConfigMap is ci-runner-<release>)" $i $app.name $release) -}}
{{- end -}}
{{- $_ := set $releases $release true -}}
{{- end -}}
{{- end -}}


{{/* The runner container's env of one app, as a YAML list: in its CronJob, and (fleet mode) in
     the admission policy that holds the fleet's Jobs to it. Call with (dict "root" $ "app" $app). */}}
{{- define "ci-runner.runnerEnv" -}}
{{- $root := .root -}}
{{- $app := .app -}}
{{- $cicdNs := include "ci-runner.cicdNamespace" $root -}}
{{- $release := include "ci-runner.appRelease" $app -}}
{{- $own := $app.runner | default dict -}}
{{- $secrets := $app.secrets | default dict -}}
{{- $extraEnv := mergeOverwrite (deepCopy $root.Values.runner.extraEnv) ($own.extraEnv | default dict) -}}
- name: REPO
  value: {{ $app.repo | quote }}
- name: IMAGE
  value: {{ $app.image | quote }}
- name: CHART_PATH
  value: {{ $app.chartPath | quote }}
- name: RELEASE
  value: {{ $release | quote }}
- name: CICD_NS
  value: {{ $cicdNs | quote }}
- name: DEPLOY_NS
  value: {{ $app.deployNamespace | quote }}
- name: STATE_CONFIGMAP
  value: {{ printf "ci-runner-%s" $release | quote }}
{{- /* The build pod's init container runs this same image to fetch the build context, so that
       Kaniko never holds the GitHub token. */}}
- name: RUNNER_IMAGE
  value: {{ include "ci-runner.image" $root | quote }}
{{- /* The runner's settings, each only when the user set it (ci-runner.settingEnv). */}}
{{- range $key, $env := include "ci-runner.settingEnv" $root | fromYaml }}
{{- $value := include "ci-runner.userSetting" (dict "root" $root "app" $app "key" $key) }}
{{- if ne $value "" }}
- name: {{ $env }}
  value: {{ $value | quote }}
{{- end }}
{{- end }}
- name: CREATE_NAMESPACE
  value: {{ $root.Values.runner.createNamespaceRole | quote }}
- name: DEPLOYER
  value: {{ include "ci-runner.deployer" (dict "root" $root "app" $app) | quote }}
{{- with $app.valuesFiles }}
- name: VALUES_FILES
  value: {{ join "," . | quote }}
{{- end }}
{{- with $secrets.gitTokenSecret }}
- name: GIT_TOKEN
  valueFrom:
    secretKeyRef:
      name: {{ . }}
      key: token
- name: GIT_TOKEN_SECRET
  value: {{ . | quote }}
{{- end }}
{{- with $secrets.githubAppSecret }}
{{- /* A GitHub App instead of a token: the runner keeps the installation token. */}}
{{- $appSecret := . }}
{{- range $env, $key := dict "GITHUB_APP_ID" "app-id" "GITHUB_APP_INSTALLATION_ID" "installation-id" "GITHUB_APP_PRIVATE_KEY" "private-key" }}
- name: {{ $env }}
  valueFrom:
    secretKeyRef:
      name: {{ $appSecret }}
      key: {{ $key }}
{{- end }}
{{- end }}
{{- with $secrets.notifyUrlSecret }}
- name: NOTIFY_URL
  valueFrom:
    secretKeyRef:
      name: {{ . }}
      key: url
{{- end }}
{{- with $secrets.registrySecret }}
- name: REGISTRY_SECRET
  value: {{ . | quote }}
{{- end }}
# helm needs writable homes; the root filesystem is read-only.
- name: HOME
  value: /home/runner
- name: HELM_CACHE_HOME
  value: /tmp/helm/cache
- name: HELM_CONFIG_HOME
  value: /tmp/helm/config
- name: HELM_DATA_HOME
  value: /tmp/helm/data
{{- range $key, $value := $extraEnv }}
- name: {{ $key }}
  value: {{ $value | quote }}
{{- end }}
{{- end -}}

{{/* The fleet's objects (CronJob, ServiceAccount, Role): <release>-fleet. */}}
{{- define "ci-runner.fleetName" -}}
{{- printf "%s-fleet" .Release.Name | trunc 52 | trimSuffix "-" -}}
{{- end -}}

{{/* The Secret the fleet keeps its GitHub App installation token in (FLEET_APP_TOKEN_SECRET). */}}
{{- define "ci-runner.fleetTokenCopy" -}}
{{- printf "%s-fleet-token" .Release.Name -}}
{{- end -}}

{{/* The fleet's record ConfigMap (FLEET_RECORD). */}}
{{- define "ci-runner.fleetRecord" -}}
{{- default (printf "%s-fleet" .Release.Name) .Values.fleet.record -}}
{{- end -}}
